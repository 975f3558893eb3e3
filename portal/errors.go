package portal

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// httpError is an error already decided at the edge: status, code and a
// message safe to show.
type httpError struct {
	status  int
	code    string
	message string
	field   string
	// retryAfter, in seconds, for 429 and 503.
	retryAfter int
	// public marks a 5xx whose message is safe and useful to show as is.
	public bool
}

func (e *httpError) Error() string { return e.message }

func errUnauthenticated(msg string) error {
	return &httpError{status: fiber.StatusUnauthorized, code: "unauthenticated", message: msg}
}

func errForbidden(msg string) error {
	return &httpError{status: fiber.StatusForbidden, code: "forbidden", message: msg}
}

func errNotFound(what string) error {
	return &httpError{status: fiber.StatusNotFound, code: "not_found", message: what + " not found"}
}

func errBadRequest(msg string) error {
	return &httpError{status: fiber.StatusBadRequest, code: "bad_request", message: msg}
}

// classify translates any error into status, code, safe message and field.
// It is the one place where store errors meet HTTP.
func classify(err error) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code := "bad_request"
		switch fe.Code {
		case fiber.StatusNotFound:
			code = "not_found"
		case fiber.StatusMethodNotAllowed:
			code = "method_not_allowed"
		case fiber.StatusRequestEntityTooLarge:
			code = "too_large"
		}
		if fe.Code >= 500 {
			return &httpError{status: fiber.StatusInternalServerError, code: "internal", message: "something went wrong on our side"}
		}
		return &httpError{status: fe.Code, code: code, message: strings.ToLower(fe.Message[:1]) + fe.Message[1:]}
	}
	if store.Unavailable(err) {
		return errUnavailable()
	}
	if e, ok := store.AsError(err); ok {
		he := &httpError{message: e.Message, field: e.Field}
		switch {
		case errors.Is(e, store.ErrNotFound):
			he.status, he.code = fiber.StatusNotFound, "not_found"
		case errors.Is(e, store.ErrInvalid):
			he.status, he.code = fiber.StatusUnprocessableEntity, "invalid"
		case errors.Is(e, store.ErrQuota):
			he.status, he.code = fiber.StatusUnprocessableEntity, "quota_exceeded"
		case errors.Is(e, store.ErrCreditLimit):
			he.status, he.code = fiber.StatusPaymentRequired, "credit_limit"
		case errors.Is(e, store.ErrNoCapacity):
			he.status, he.code = fiber.StatusUnprocessableEntity, "no_capacity"
		case errors.Is(e, store.ErrConflict):
			he.status, he.code = fiber.StatusConflict, "conflict"
		case errors.Is(e, store.ErrInvalidTransition):
			he.status, he.code = fiber.StatusConflict, "invalid_state"
		case errors.Is(e, store.ErrSuspended):
			he.status, he.code = fiber.StatusForbidden, "suspended"
		case errors.Is(e, store.ErrForbidden):
			he.status, he.code = fiber.StatusForbidden, "forbidden"
		default:
			he.status, he.code = fiber.StatusInternalServerError, "internal"
		}
		return he
	}
	return &httpError{status: fiber.StatusInternalServerError, code: "internal", message: "something went wrong on our side"}
}

// errUnavailable answers every request that met an unreachable or locked
// database; the client should try again once it is back. (A change may
// still have been made before the database went away: retries of creates
// meet the usual conflict and quota checks.)
func errUnavailable() *httpError {
	return &httpError{status: fiber.StatusServiceUnavailable, code: codeUnavailable,
		message: "the database is unreachable at the moment; try again in a few seconds", retryAfter: unavailableRetry}
}

// codeUnavailable is the API error code of errUnavailable.
const codeUnavailable = "unavailable"

// unavailableRetry is the Retry-After, in seconds, of errUnavailable: about
// how long a database restart or failover takes.
const unavailableRetry = 5

type apiErrorBody struct {
	Error apiErrorDetail `json:"error"`
}

type apiErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// handleError writes the response for an error that reached the edge, and
// logs it once: an unreachable database at warn level (the cause carries
// no credentials: the drivers name host, user and database only), other
// server faults at error level with the cause, refusals at debug level.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	he := classify(err)
	log := s.logger(c)
	switch {
	case he.code == codeUnavailable:
		log.Warn("request failed: database unavailable", "err", err, "path", c.Path())
	case he.status >= 500:
		log.Error("request failed", "err", err, "path", c.Path())
	default:
		log.Debug("request refused", "status", he.status, "code", he.code, "reason", he.message)
	}
	if he.retryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, itoa(he.retryAfter))
	}
	msg := he.message
	if he.status >= 500 && he.code != codeUnavailable && !he.public {
		msg = "something went wrong on our side; quote reference " + requestID(c) + " if you contact support"
	}
	c.Status(he.status)
	if strings.HasPrefix(c.Path(), "/api/") || unreadable(c, he.status) {
		return c.JSON(apiErrorBody{Error: apiErrorDetail{Code: he.code, Message: msg, Field: he.field, RequestID: requestID(c)}})
	}
	if he.status == fiber.StatusUnauthorized && c.Method() == fiber.MethodGet {
		return c.Redirect("/login?next=" + urlQueryEscape(c.OriginalURL()))
	}
	if c.Get("HX-Request") == "true" {
		c.Set("HX-Reswap", "none")
		return c.SendString(msg)
	}
	return s.render(c, views.ErrorPage(views.ErrorView{Page: s.page(c, errorTitle(he.status), ""), Status: he.status, Message: msg}))
}

// unreadable tells whether the server gave up reading the request: a
// chunked body over the limit or a multipart body that does not parse. The
// server then drops what it had read, path and headers too, so the answer
// cannot tell a page from an API call; such requests come from programs
// (browsers send a length, and get their page), so they are answered as the
// API answers.
func unreadable(c *fiber.Ctx, status int) bool {
	switch status {
	case fiber.StatusBadRequest, fiber.StatusRequestEntityTooLarge, fiber.StatusRequestHeaderFieldsTooLarge, fiber.StatusRequestTimeout:
	default:
		return false
	}
	return len(c.Request().Header.RawHeaders()) == 0 && len(c.Request().Header.Host()) == 0
}

func errorTitle(status int) string {
	switch status {
	case fiber.StatusNotFound:
		return "Not found"
	case fiber.StatusForbidden:
		return "Not allowed"
	case fiber.StatusTooManyRequests:
		return "Slow down"
	case fiber.StatusUnauthorized:
		return "Please log in"
	case fiber.StatusServiceUnavailable:
		return "Temporarily unavailable"
	}
	if status >= 500 {
		return "Something went wrong"
	}
	return "Request refused"
}
