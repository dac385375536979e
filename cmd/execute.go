package cmd

import (
	"context"
	"errors"
	"strings"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/cmd/report"
	"github.com/rfenv/rfenv/pkg/errs"
)

// Exit codes, documented in the README (defined in cmd/report, which the lean front shares).
const (
	ExitOK             = report.ExitOK
	ExitMethodRaised   = report.ExitMethodRaised
	ExitUsage          = report.ExitUsage
	ExitNotFound       = report.ExitNotFound
	ExitInfra          = report.ExitInfra
	ExitConflict       = report.ExitConflict
	ExitSessionLost    = report.ExitSessionLost
	ExitValidateFailed = report.ExitValidateFailed
	ExitDeadline       = report.ExitDeadline
	ExitInterrupted    = report.ExitInterrupted
)

// Execute runs the command line and returns the process's exit code. It prints errors to stderr.
func Execute(ctx context.Context, ios *iostreams.IOStreams, getenv func(string) string, args []string) int {
	f := NewFactory(ios, getenv)
	defer f.Close()
	root, err := NewRoot(f)
	if err == nil {
		root.SetArgs(args)
		err = root.ExecuteContext(ctx)
	}
	if err == nil {
		return ExitOK
	}
	err = withFlagAdvice(report.Interrupted(ctx, err))
	reportError(f, err)
	return ExitCode(err)
}

// ExitCode maps an error to the documented exit code.
func ExitCode(err error) int {
	var vf *validateFailed
	if errors.As(err, &vf) {
		return ExitValidateFailed
	}
	code := report.Code(err)
	if code == ExitInfra && errs.KindOf(err) == nil && isCobraUsageError(err) {
		return ExitUsage
	}
	return code
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
	msg := err.Error()
	if isCobraUsageError(err) {
		msg += " (see `rfenv --help`)"
	}
	report.Print(f.IO, f.Quiet, f.Verbose, err, msg)
}
