package front

import (
	"os"
	"path/filepath"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/cmd/output/plain"
	"github.com/rfenv/rfenv/cmd/report"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/protocol"
)

// FullBinaryEnv overrides where the front finds the full binary.
const FullBinaryEnv = "RFENV_FULL"

// fullBinary is the full rfenv binary: $RFENV_FULL, else rfenv-full beside this executable.
func fullBinary(getenv func(string) string) (string, error) {
	if p := getenv(FullBinaryEnv); p != "" {
		return p, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", errs.New(errs.Infra, "finding %s: %v; set %s to its path", protocol.FullBinaryName, err, FullBinaryEnv)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	p := filepath.Join(filepath.Dir(self), protocol.FullBinaryName)
	if _, err := os.Stat(p); err != nil {
		return "", errs.New(errs.Infra, "this rfenv is the lean front: every command but a plain call runs in %s, which is not beside it (%s); install both binaries of the release together, or set %s to its path", protocol.FullBinaryName, p, FullBinaryEnv)
	}
	return p, nil
}

// fullBinaryDo finds the full binary and runs do with its path; an error says what failed.
func fullBinaryDo(getenv func(string) string, do func(path string) (int, error)) (int, error) {
	p, err := fullBinary(getenv)
	if err != nil {
		return report.ExitInfra, err
	}
	code, err := do(p)
	if err != nil {
		return report.ExitInfra, errs.New(errs.Infra, "running %s: %v", p, err)
	}
	return code, nil
}

// handOffFailed reports a hand-off that could not run the full binary.
func handOffFailed(ios *iostreams.IOStreams, code int, err error) int {
	if err == nil {
		return code
	}
	plain.Error(ios, err.Error())
	return report.Code(err)
}
