package cmd

import (
	"context"
	"errors"
	"strings"

	"github.com/rfenv/rfenv/cmd/iostreams"
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

// Execute runs the command line and returns the process's exit code. It prints errors to stderr.
func Execute(ctx context.Context, ios *iostreams.IOStreams, getenv func(string) string, args []string) int {
	f := NewFactory(ios, getenv)
	defer f.Close()
	root, err := NewRoot(f)
	if err == nil {
		if needsFull(root, args) {
			return runFull(ios, f.Getenv, args)
		}
		root.SetArgs(args)
		err = root.ExecuteContext(ctx)
	}
	if err == nil {
		return ExitOK
	}
	if isHandOff(err) {
		f.Close()
		return runFull(ios, f.Getenv, args)
	}
	if ctx.Err() != nil && errs.KindOf(err) == nil {
		err = errs.Wrap(errs.Interrupted, err)
	}
	err = withFlagAdvice(err)
	reportError(f, err)
	return ExitCode(err)
}

// ExitCode maps an error to the documented exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var vf *validateFailed
	if errors.As(err, &vf) {
		return ExitValidateFailed
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
	case isCobraUsageError(err):
		return ExitUsage
	}
	return ExitInfra
}

// isCobraUsageError recognises cobra's own parse errors, which carry no type.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "required flag"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func reportError(f *Factory, err error) {
	if errors.As(err, new(quietError)) {
		return
	}
	p := f.Printer()
	msg := err.Error()
	if isCobraUsageError(err) {
		msg += " (see `rfenv --help`)"
	}
	p.Error(msg)
	var ce *pool.CallError
	if errors.As(err, &ce) && ce.Traceback != "" {
		if f.Verbose {
			f.IO.ErrOut.Write([]byte(strings.TrimRight(ce.Traceback, "\n") + "\n"))
		} else if ce.Status == 500 {
			p.Info("run with --verbose to see the traceback")
		}
	}
}
