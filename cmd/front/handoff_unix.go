//go:build unix

package front

import (
	"os"
	"syscall"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/cmd/report"
)

// runFull replaces this process with the full binary, given the same arguments: the process ID,
// streams, signals and exit code stay the caller's. It returns only when the exec failed.
func runFull(ios *iostreams.IOStreams, getenv func(string) string, args []string) int {
	code, err := fullBinaryDo(getenv, func(p string) (int, error) {
		return report.ExitOK, syscall.Exec(p, append([]string{p}, args...), os.Environ())
	})
	return handOffFailed(ios, code, err)
}
