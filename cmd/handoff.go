package cmd

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/cmd/output"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/protocol"
)

// The lean front. Go runs every linked package's initialisation before main, whatever the command:
// BuildKit, gRPC and client-go cost each `rfenv call` about 4 ms of a ~6 ms start although a call
// uses none of them. So rfenv ships as two builds of this one command tree, the way the docker CLI
// hands `docker buildx` to a plugin binary: `rfenv` (tag rfenvlean) links the call path (the state
// file, the pool, SSH, Docker) and runs the commands in leanCommands itself; it hands every other
// command, and any command on an environment of a backend it leaves out, to rfenv-full beside it by
// exec (same process, arguments, streams and exit code). The default build (`go install`) is the
// full binary and never hands off.

// FullBinaryEnv overrides where the lean front finds the full binary.
const FullBinaryEnv = "RFENV_FULL"

// leanCommands are the top-level commands the lean front runs itself: calling and inspecting.
var leanCommands = map[string]bool{
	"call": true, "session": true, "methods": true, "stats": true, "ls": true,
	"config": true, "version": true, "completion": true, "help": true,
	cobra.ShellCompRequestCmd: true, cobra.ShellCompNoDescRequestCmd: true,
}

// envCommands are the lean commands whose arguments name environments (completion requests name
// them too: a method name of an environment the front cannot open is completed by rfenv-full).
var envCommands = map[string]bool{
	"call": true, "session": true, "methods": true, "stats": true,
	cobra.ShellCompRequestCmd: true, cobra.ShellCompNoDescRequestCmd: true,
}

// needsFull says whether the lean front must hand args to the full binary before parsing them.
func needsFull(root *cobra.Command, args []string) bool {
	return leanBuild && !frontRuns(root, args)
}

// frontRuns says whether the lean front runs the command line itself.
func frontRuns(root *cobra.Command, args []string) bool {
	c, _, err := root.Find(args)
	if err != nil || c == root {
		return true // cobra reports the unknown command, or prints the help
	}
	return leanCommands[topLevel(c).Name()]
}

// topLevel is the command under the root that c belongs to.
func topLevel(c *cobra.Command) *cobra.Command {
	for c.HasParent() && c.Parent().HasParent() {
		c = c.Parent()
	}
	return c
}

// checkLinked is the lean front's check before a command runs: an argument that names an
// environment of a backend this build leaves out hands the command to the full binary. It runs
// after flag parsing and before anything reads stdin or calls a replica.
func checkLinked(ctx context.Context, f *Factory, c *cobra.Command, args []string) error {
	if !leanBuild || len(args) == 0 || !envCommands[topLevel(c).Name()] {
		return nil
	}
	client, err := f.Client()
	if err != nil {
		return nil // the command itself reports it
	}
	for _, a := range args {
		if err := client.Linked(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// isHandOff says whether err asks for the full binary.
func isHandOff(err error) bool {
	var nl *backend.NotLinkedError
	return leanBuild && errors.As(err, &nl)
}

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
		return "", errs.New(errs.Infra, "this rfenv is the lean front: builds and Kubernetes run in %s, which is not beside it (%s); install both binaries of the release together, or set %s to its path", protocol.FullBinaryName, p, FullBinaryEnv)
	}
	return p, nil
}

// fullBinaryDo finds the full binary and runs do with its path; an error says what failed.
func fullBinaryDo(getenv func(string) string, do func(path string) (int, error)) (int, error) {
	p, err := fullBinary(getenv)
	if err != nil {
		return ExitInfra, err
	}
	code, err := do(p)
	if err != nil {
		return ExitInfra, errs.New(errs.Infra, "running %s: %v", p, err)
	}
	return code, nil
}

// handOffFailed reports a hand-off that could not run the full binary.
func handOffFailed(ios *iostreams.IOStreams, code int, err error) int {
	if err == nil {
		return code
	}
	output.New(ios, false).Error(err.Error())
	return ExitCode(err)
}
