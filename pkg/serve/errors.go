package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// Error kinds on the wire: the CLI's exit codes by name (README's table), one for one.
const (
	KindUsage        = "usage"         // exit 2
	KindNotFound     = "not_found"     // exit 3
	KindMethodRaised = "method_raised" // exit 1
	KindInfra        = "infra"         // exit 4
	KindConflict     = "conflict"      // exit 5
	KindSessionLost  = "session_lost"  // exit 6
	KindDeadline     = "deadline"      // exit 124
	KindInterrupted  = "interrupted"   // exit 130
)

// kindStatus is the HTTP status of each kind. Clients decide on the kind, not the status.
var kindStatus = map[string]int{
	KindUsage:        http.StatusBadRequest,
	KindNotFound:     http.StatusNotFound,
	KindMethodRaised: http.StatusInternalServerError, // as the shim answers a raised method
	KindInfra:        http.StatusBadGateway,
	KindConflict:     http.StatusConflict,
	KindSessionLost:  http.StatusGone,
	KindDeadline:     http.StatusGatewayTimeout,
	KindInterrupted:  http.StatusServiceUnavailable,
}

// Kinds lists the error kinds (for the schema and its test).
func Kinds() []string {
	return []string{KindUsage, KindNotFound, KindMethodRaised, KindInfra, KindConflict, KindSessionLost, KindDeadline, KindInterrupted}
}

// kindName maps a library error to its wire kind, with the same precedence as the CLI's exit code.
func kindName(err error) string {
	switch errs.KindOf(err) {
	case errs.Interrupted:
		return KindInterrupted
	case errs.Deadline:
		return KindDeadline
	case errs.SessionLost:
		return KindSessionLost
	case errs.Usage:
		return KindUsage
	case errs.NotFound:
		return KindNotFound
	case errs.Conflict:
		return KindConflict
	case errs.MethodRaised:
		return KindMethodRaised
	case errs.Infra:
		return KindInfra
	}
	switch {
	case errors.Is(err, state.ErrNotFound):
		return KindNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return KindDeadline
	case errors.Is(err, context.Canceled):
		return KindInterrupted
	}
	return KindInfra
}

// fieldError is a bad request about one field of its body or query.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }
func (e *fieldError) Unwrap() error { return errs.Usage }

func badField(field, format string, a ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, a...)}
}

// errorInfo turns any error into the wire form.
func errorInfo(err error) ErrorInfo {
	info := ErrorInfo{Kind: kindName(err), Message: err.Error()}
	var fe *fieldError
	if errors.As(err, &fe) {
		info.Field = fe.field
	}
	var ce *pool.CallError
	if errors.As(err, &ce) {
		info.Type = ce.Type
		info.Traceback = ce.Traceback
		if info.Kind == KindMethodRaised && ce.Message != "" {
			info.Message = ce.Message
		}
	}
	return info
}

func writeError(w http.ResponseWriter, err error) {
	info := errorInfo(err)
	writeJSON(w, kindStatus[info.Kind], ErrorBody{Error: info})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"kind":"infra","message":"encode the answer: ` + strings.ReplaceAll(err.Error(), `"`, `'`) + `"}}`)
	}
	writeBody(w, status, b)
}

// writeBody writes a JSON body with its length, so keep-alive clients never see chunked encoding.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// maxBody bounds a request body (call arguments included).
const maxBody = 64 << 20

// decode reads a JSON body strictly into v: unknown fields, wrong types and trailing data are
// usage errors that name the field.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return badField("body", "trailing data after the JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return badField("body", "empty; expected a JSON object")
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return badField(field, "expected %s, got JSON %s", te.Type, te.Value)
	case errors.As(err, &se):
		return badField("body", "invalid JSON at byte %d: %v", se.Offset, err)
	}
	// encoding/json words an unknown field as: json: unknown field "x"
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		name := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
		return badField(name, "unknown field")
	}
	return badField("body", "%v", err)
}
