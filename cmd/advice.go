package cmd

import (
	"errors"
	"strings"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// withFlagAdvice adds to a library error the flags that get past it: the library speaks in its own
// terms (options), the CLI knows its flags.
func withFlagAdvice(err error) error {
	var conflict *rfenv.ConfigConflictError
	if errors.As(err, &conflict) {
		return &advisedError{err: err, advice: "; pass --force-recreate to replace its replicas, or `rfenv down " + conflict.Env + "` first"}
	}
	var none *pool.NoReplicaError
	if errors.As(err, &none) {
		advice := "; check `rfenv stats " + none.Env + "`, and run `rfenv up` on it to replace dead replicas"
		if none.NoRoute {
			advice = "; its replicas' addresses have no route from here: run `rfenv up` on it again with --transport auto (the default) or published, which reaches them at ports published on their hosts' 127.0.0.1"
		}
		return &advisedError{err: err, advice: advice}
	}
	var lost *pool.ReplicaLostError
	if errors.As(err, &lost) {
		return &lostInCLITerms{err}
	}
	return err
}

// advisedError is an error with CLI advice after its message; it keeps the error's kind and chain.
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
