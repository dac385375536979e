//go:build rfenvlean && unix

package cmd

import (
	"os"
	"syscall"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/cmd/output"
	"github.com/rfenv/rfenv/pkg/errs"
)

// leanBuild: this is the lean front (see handoff.go).
const leanBuild = true

// runFull replaces this process with the full binary, given the same arguments: the process ID,
// streams, signals and exit code stay the caller's. It returns only when the exec failed.
func runFull(ios *iostreams.IOStreams, getenv func(string) string, args []string) int {
	p, err := fullBinary(getenv)
	if err == nil {
		err = syscall.Exec(p, append([]string{p}, args...), os.Environ())
		err = errs.New(errs.Infra, "running %s: %v", p, err)
	}
	output.New(ios, false).Error(err.Error())
	return ExitCode(err)
}
