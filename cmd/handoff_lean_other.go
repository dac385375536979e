//go:build rfenvlean && !unix

package cmd

import (
	"errors"
	"os"
	"os/exec"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/cmd/output"
	"github.com/rfenv/rfenv/pkg/errs"
)

// leanBuild: this is the lean front (see handoff.go).
const leanBuild = true

// runFull runs the full binary with the same arguments and streams, and returns its exit code
// (there is no exec(2) here to replace this process).
func runFull(ios *iostreams.IOStreams, getenv func(string) string, args []string) int {
	p, err := fullBinary(getenv)
	if err == nil {
		c := exec.Command(p, args...)
		c.Stdin, c.Stdout, c.Stderr, c.Env = ios.In, ios.Out, ios.ErrOut, os.Environ()
		err = c.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err == nil {
			return ExitOK
		}
		err = errs.New(errs.Infra, "running %s: %v", p, err)
	}
	output.New(ios, false).Error(err.Error())
	return ExitCode(err)
}
