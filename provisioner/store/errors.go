package store

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Sentinels classify every error the store returns to callers.
var (
	ErrNotFound          = errors.New("not found")
	ErrInvalid           = errors.New("invalid input")
	ErrConflict          = errors.New("conflict")
	ErrQuota             = errors.New("quota exceeded")
	ErrInvalidTransition = errors.New("invalid transition")
	ErrSuspended         = errors.New("tenant suspended")
	ErrForbidden         = errors.New("forbidden")
	ErrCreditLimit       = errors.New("over the credit limit")
	// ErrUnavailable is a database that cannot be reached or is too busy
	// to answer in time: the same request may well succeed a little later.
	ErrUnavailable = errors.New("database unavailable")
)

// Unavailable tells whether err means the database could not be reached,
// went away mid-request or stayed locked beyond the busy timeout, rather
// than refusing the request: the caller should answer "try again" (HTTP
// 503) or, in a background loop, back off and retry. It looks through the
// whole chain, so errors wrapped by any layer count.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		// Class 08 is connection exceptions; 57P01-57P03 are the server
		// shutting down, crashing or not yet accepting connections.
		return strings.HasPrefix(pg.Code, "08") || pg.Code == "57P01" || pg.Code == "57P02" || pg.Code == "57P03"
	}
	var coded interface{ Code() int } // SQLite's errors carry the result code
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff {
		case sqliteBusy, sqliteLocked:
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// SQLite's primary result codes for a database another connection holds.
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)

// Error is a classified error whose message is safe to show to the person
// who caused it; Field names the input at fault, if any.
type Error struct {
	Kind    error
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Kind }

// E builds a classified error.
func E(kind error, field, message string) error {
	return &Error{Kind: kind, Field: field, Message: message}
}

// AsError returns the classified error inside err, if there is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

func notFound(what string) error { return E(ErrNotFound, "", what+" not found") }

func isDuplicate(err error) bool { return errors.Is(err, gorm.ErrDuplicatedKey) }

func errIsNotFound(err error) bool { return errors.Is(err, gorm.ErrRecordNotFound) }
