//go:build !unix

package front

import (
	"errors"
	"os"
	"os/exec"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/cmd/report"
)

// runFull runs the full binary with the same arguments and streams, and returns its exit code
// (there is no exec(2) here to replace this process).
func runFull(ios *iostreams.IOStreams, getenv func(string) string, args []string) int {
	code, err := fullBinaryDo(getenv, func(p string) (int, error) {
		c := exec.Command(p, args...)
		c.Stdin, c.Stdout, c.Stderr, c.Env = ios.In, ios.Out, ios.ErrOut, os.Environ()
		err := c.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), nil
		}
		return report.ExitOK, err
	})
	return handOffFailed(ios, code, err)
}
