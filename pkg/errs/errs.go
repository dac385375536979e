// Package errs classifies rfenv's errors into kinds that the CLI maps to exit codes. Library users
// test a kind with errors.Is(err, errs.NotFound) and so on; the message stays the wrapped error's.
package errs

import (
	"errors"
	"fmt"
)

// Kind is a class of failure. Kinds are sentinel errors so that errors.Is works through wrapping.
type Kind struct{ name string }

func (k *Kind) Error() string { return k.name }

var (
	// Usage: the caller asked for something malformed (bad flag value, bad argument JSON, missing env.py).
	Usage = &Kind{"usage error"}
	// NotFound: an unknown environment, method, image or host.
	NotFound = &Kind{"not found"}
	// MethodRaised: the environment's method ran and raised an exception.
	MethodRaised = &Kind{"method raised"}
	// Infra: Docker, SSH, the network or the replicas failed; nothing is wrong with the request.
	Infra = &Kind{"infrastructure error"}
	// Deadline: the call's deadline passed.
	Deadline = &Kind{"deadline exceeded"}
	// Interrupted: the user interrupted the command (SIGINT/SIGTERM).
	Interrupted = &Kind{"interrupted"}
	// Conflict: the request collides with existing state (a container rfenv did not create, a config mismatch).
	Conflict = &Kind{"conflict"}
	// SessionLost: a session's replica died, was replaced or restarted, so the episode state it held
	// is gone. Such a call is never moved to another replica; the caller opens a new session.
	SessionLost = &Kind{"session lost"}
)

// kinded attaches a kind to an error without changing its message.
type kinded struct {
	kind *Kind
	err  error
}

func (e *kinded) Error() string { return e.err.Error() }
func (e *kinded) Unwrap() []error {
	return []error{e.err, e.kind}
}

// Wrap marks err with kind; nil stays nil.
func Wrap(kind *Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kinded{kind: kind, err: err}
}

// New returns a new error of the given kind with a formatted message.
func New(kind *Kind, format string, args ...any) error {
	return &kinded{kind: kind, err: fmt.Errorf(format, args...)}
}

// KindOf returns the first kind found in err's chain, or nil.
func KindOf(err error) *Kind {
	for _, k := range []*Kind{Interrupted, Deadline, SessionLost, Usage, NotFound, Conflict, MethodRaised, Infra} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// Explained is err followed, on the next line, by its diagnosis (why); it keeps err's kind and chain.
func Explained(err error, why string) error { return &explained{err: err, why: why} }

type explained struct {
	err error
	why string
}

func (e *explained) Error() string { return e.err.Error() + "\n" + e.why }
func (e *explained) Unwrap() error { return e.err }
