package store_test

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// sqliteError stands in for the SQLite driver's error, which carries the
// result code.
type sqliteError int

func (e sqliteError) Error() string { return fmt.Sprintf("sqlite error %d", int(e)) }
func (e sqliteError) Code() int     { return int(e) }

func TestUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"not found", store.E(store.ErrNotFound, "", "vm not found"), false},
		{"duplicate", fmt.Errorf("create key: %w", gorm.ErrDuplicatedKey), false},
		{"sentinel", fmt.Errorf("ping: %w", store.ErrUnavailable), true},
		{"connect", fmt.Errorf("load user: %w", &pgconn.ConnectError{}), true},
		{"connection refused", fmt.Errorf("load user: %w", refused), true},
		{"bad connection", fmt.Errorf("begin: %w", driver.ErrBadConn), true},
		{"connection cut", fmt.Errorf("list vms: %w", io.ErrUnexpectedEOF), true},
		{"admin shutdown", fmt.Errorf("list vms: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, false},
		{"sqlite busy", fmt.Errorf("claim: %w", sqliteError(5)), true},
		{"sqlite busy snapshot", sqliteError(517), true},
		{"sqlite locked", sqliteError(6), true},
		{"sqlite constraint", sqliteError(19), false},
		{"other", errors.New("disk full"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := store.Unavailable(tc.err); got != tc.want {
				t.Errorf("Unavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
