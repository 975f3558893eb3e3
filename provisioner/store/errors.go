package store

import (
	"errors"

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
