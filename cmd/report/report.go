// Package report turns an error into what the user sees: the documented exit code, the flags that
// get past a pool error, and the message (with a traceback on --verbose) on stderr. It links no
// command-line library, so that the lean front (cmd/front) and the full command tree (cmd) report
// a failed call in the same words and with the same code.
package report

import (
	"context"
	"errors"
	"strings"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/cmd/output/plain"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// Exit codes, documented in the README.
const (
	ExitOK           = 0
	ExitMethodRaised = 1
	ExitUsage        = 2
	ExitNotFound     = 3
	ExitInfra        = 4
	ExitConflict     = 5
	ExitSessionLost  = 6
	// ExitValidateFailed: rfenv validate ran, and some input was inconsistent or failed.
	ExitValidateFailed = 7
	ExitDeadline       = 124
	ExitInterrupted    = 130
)

// Code maps an error to its exit code by the library's kinds; an error of no kind is an
// infrastructure failure unless it says it is a missing entry, a cancellation or a deadline.
func Code(err error) int {
	if err == nil {
		return ExitOK
	}
	switch errs.KindOf(err) {
	case errs.Interrupted:
		return ExitInterrupted
	case errs.Deadline:
		return ExitDeadline
	case errs.Usage:
		return ExitUsage
	case errs.NotFound:
		return ExitNotFound
	case errs.Conflict:
		return ExitConflict
	case errs.SessionLost:
		return ExitSessionLost
	case errs.MethodRaised:
		return ExitMethodRaised
	case errs.Infra:
		return ExitInfra
	}
	switch {
	case errors.Is(err, state.ErrNotFound):
		return ExitNotFound
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.Is(err, context.DeadlineExceeded):
		return ExitDeadline
	}
	return ExitInfra
}

// Interrupted marks an error of no kind that ended a command whose context was cancelled (a
// signal) as an interruption.
func Interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil && errs.KindOf(err) == nil {
		return errs.Wrap(errs.Interrupted, err)
	}
	return err
}

// PoolAdvice adds to a pool error the flags that get past it: the library speaks in its own terms
// (options), the command line knows its flags.
func PoolAdvice(err error) error {
	var none *pool.NoReplicaError
	if errors.As(err, &none) {
		advice := "; check `rfenv stats " + none.Env + "`, and run `rfenv up` on it to replace dead replicas"
		if none.NoRoute {
			advice = "; its replicas' addresses have no route from here: run `rfenv up` on it again with --transport auto (the default) or published, which reaches them at ports published on their hosts' 127.0.0.1"
		}
		return Advised(err, advice)
	}
	var lost *pool.ReplicaLostError
	if errors.As(err, &lost) {
		return &lostInCLITerms{err}
	}
	return err
}

// Advised is err with advice after its first line; it keeps the error's kind and chain.
func Advised(err error, advice string) error { return &advisedError{err: err, advice: advice} }

type advisedError struct {
	err    error
	advice string
}

func (e *advisedError) Error() string {
	msg := e.err.Error()
	// Advice belongs to the first line: a diagnosis may follow on the next ones.
	if first, rest, ok := strings.Cut(msg, "\n"); ok {
		return first + e.advice + "\n" + rest
	}
	return msg + e.advice
}

func (e *advisedError) Unwrap() error { return e.err }

// lostInCLITerms names the flag where the library names its option.
type lostInCLITerms struct{ err error }

func (e *lostInCLITerms) Error() string {
	return strings.Replace(e.err.Error(), "set Retries to retry such calls", "pass --retries N to retry such calls", 1)
}

func (e *lostInCLITerms) Unwrap() error { return e.err }

// Print writes msg, the message of err, to stderr, and after a method's exception its traceback
// (with verbose) or how to see it.
func Print(ios *iostreams.IOStreams, quiet, verbose bool, err error, msg string) {
	plain.Error(ios, msg)
	var ce *pool.CallError
	if errors.As(err, &ce) && ce.Traceback != "" {
		if verbose {
			ios.ErrOut.Write([]byte(strings.TrimRight(ce.Traceback, "\n") + "\n"))
		} else if ce.Status == 500 {
			plain.Info(ios, quiet, "run with --verbose to see the traceback")
		}
	}
}
