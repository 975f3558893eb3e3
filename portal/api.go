package portal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// decodeJSON reads a JSON request body strictly: the right content type,
// known fields only, one value.
func decodeJSON(c *fiber.Ctx, v any) error {
	if ct := string(c.Request().Header.ContentType()); !strings.HasPrefix(ct, fiber.MIMEApplicationJSON) {
		return &httpError{status: fiber.StatusUnsupportedMediaType, code: "unsupported_media_type", message: "send the body as application/json"}
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return errBadRequest("the request body is empty")
		case errors.As(err, &se):
			return errBadRequest(fmt.Sprintf("the body is not valid JSON (at byte %d)", se.Offset))
		case errors.As(err, &te):
			return &httpError{status: fiber.StatusBadRequest, code: "bad_request", field: te.Field,
				message: fmt.Sprintf("%s must be %s", te.Field, jsonKind(te.Type.Kind().String()))}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &httpError{status: fiber.StatusBadRequest, code: "bad_request", field: f, message: unknownFieldMessage(f, jsonFields(v))}
		}
		return errBadRequest("the body is not valid JSON")
	}
	if dec.More() {
		return errBadRequest("send exactly one JSON object")
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	}
	return "an object"
}

// listResponse is the envelope of every paginated list.
type listResponse[T any] struct {
	Items   []T `json:"items"`
	Page    int `json:"page"`
	PerPage int `json:"per_page"`
	Total   int `json:"total"`
}

func newList[T any](items []T, p store.Page, total int) listResponse[T] {
	if items == nil {
		items = []T{}
	}
	if p.Number < 1 {
		p.Number = 1
	}
	if p.PerPage <= 0 {
		p.PerPage = store.DefaultPerPage
	}
	return listResponse[T]{Items: items, Page: p.Number, PerPage: min(p.PerPage, store.MaxPerPage), Total: total}
}

// apiPage reads pagination from the query and refuses nonsense.
func apiPage(c *fiber.Ctx) (store.Page, error) {
	p := pageOf(c)
	if p.Number < 1 {
		return p, &httpError{status: fiber.StatusBadRequest, code: "bad_request", field: "page", message: "page must be 1 or more"}
	}
	if p.PerPage < 1 || p.PerPage > store.MaxPerPage {
		return p, &httpError{status: fiber.StatusBadRequest, code: "bad_request", field: "per_page", message: fmt.Sprintf("per_page must be between 1 and %d", store.MaxPerPage)}
	}
	return p, nil
}
