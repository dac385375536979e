package pool

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rfenv/rfenv/pkg/errs"
)

// CallError is an error the server answered: the method raised, the arguments did not bind, the
// method does not exist, the deadline passed in the server.
type CallError struct {
	Status    int
	Type      string
	Message   string
	Traceback string
	Method    string
	Replica   int
}

func (e *CallError) Error() string {
	switch e.Status {
	case http.StatusNotFound:
		return e.Message
	case http.StatusUnauthorized:
		return fmt.Sprintf("replica %d rejected the environment's token (%s): its address now belongs to another container (the replica was removed), or the environment was recreated from another state directory; run `rfenv up` again", e.Replica, e.Message)
	case http.StatusGatewayTimeout:
		return fmt.Sprintf("%s: %s", e.Method, e.Message)
	}
	if e.Type != "" {
		return fmt.Sprintf("%s: %s", e.Type, e.Message)
	}
	return e.Message
}

// Unwrap gives the error its kind, which decides the CLI's exit code.
func (e *CallError) Unwrap() error {
	switch e.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusRequestHeaderFieldsTooLarge, http.StatusUnprocessableEntity:
		return errs.Usage
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return errs.NotFound
	case http.StatusGatewayTimeout:
		return errs.Deadline
	case http.StatusInternalServerError:
		return errs.MethodRaised
	}
	return errs.Infra
}

// ReplicaLostError is a call whose request reached a replica but whose answer never came: the
// connection broke (the server or its container died mid-call). The method may have run, so the call
// is not retried unless the caller opted in. Its kind is errs.Infra.
type ReplicaLostError struct {
	Method  string
	Replica int    // the replica's index
	Name    string // "replica 0 (addr on host)"
	Err     error  // the transport's error
}

func (e *ReplicaLostError) Error() string {
	return fmt.Sprintf("call %s on %s failed after the request was sent, so it is not retried (it may have run; set Retries to retry such calls on another replica): %v", e.Method, e.Name, e.Err)
}

// Unwrap gives the transport's error and the errs.Infra kind.
func (e *ReplicaLostError) Unwrap() []error { return []error{e.Err, errs.Infra} }

// PinnedError is a call pinned to one replica (a session's) that could not run there: the replica is
// gone, out of rotation, not answering, or its server restarted. The call is never moved to another
// replica; the caller decides what the loss means (a session: errs.SessionLost). Its kind is
// errs.Infra unless the caller says otherwise.
type PinnedError struct {
	Replica   int
	Why       string // "is not answering: ...", "was restarted: ...", ...
	Restarted bool   // the replica answers, as a new process
	Err       error  // the underlying error, if any
}

func (e *PinnedError) Error() string { return fmt.Sprintf("replica %d %s", e.Replica, e.Why) }

// Unwrap gives the underlying error, if any.
func (e *PinnedError) Unwrap() error { return e.Err }

// decodeCallError reads the shim's error envelope, or a user server's FastAPI-style {"detail": ...}.
func decodeCallError(status int, body []byte, method string, replica int) *CallError {
	e := &CallError{Status: status, Method: method, Replica: replica}
	var env struct {
		Error *struct {
			Type      string `json:"type"`
			Message   string `json:"message"`
			Traceback string `json:"traceback"`
		} `json:"error"`
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		e.Type, e.Message, e.Traceback = env.Error.Type, env.Error.Message, env.Error.Traceback
		return e
	}
	if len(env.Detail) > 0 {
		var s string
		if json.Unmarshal(env.Detail, &s) == nil {
			e.Message = s
		} else {
			e.Message = string(env.Detail)
		}
	} else {
		e.Message = fmt.Sprintf("HTTP %d: %s", status, truncate(string(body), 300))
	}
	if status == http.StatusInternalServerError && e.Type == "" {
		e.Type = "ServerError"
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// NoReplicaError says that no replica of the environment could take a call: each one is down,
// and nothing ran.
type NoReplicaError struct {
	Env, Method string
	Reasons     []string // why each replica is out of rotation
	// NoRoute: some replica's address has no route from this machine (its bridge address seen
	// from outside Docker's host, or behind a firewall).
	NoRoute bool
}

func (e *NoReplicaError) Error() string {
	detail := ""
	if len(e.Reasons) > 0 {
		detail = " (" + strings.Join(e.Reasons, "; ") + ")"
	}
	return fmt.Sprintf("no healthy replica of %s can take %s%s", e.Env, e.Method, detail)
}

// Unwrap makes it an error of kind errs.Infra.
func (e *NoReplicaError) Unwrap() error { return errs.Infra }

// NotPlaced says whether err failed a call that no replica took: an infrastructure error other than
// a call lost on its replica (which may have run). Trying such a call again, elsewhere or after
// following replicas that moved, cannot run it twice.
func NotPlaced(err error) bool {
	return errs.KindOf(err) == errs.Infra && !errors.As(err, new(*ReplicaLostError))
}
