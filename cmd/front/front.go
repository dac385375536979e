// Package front is the lean front binary, `rfenv` as released (main built with tag rfenvlean). Go
// runs the initialisation of every linked package before main, whatever the command: the Docker
// client, BuildKit, gRPC, client-go, cobra and lipgloss cost each `rfenv call` milliseconds although
// a call uses none of them. So the front links only what a plain call needs (the configuration, the
// state file, the pool) and runs `rfenv call NAME METHOD` itself when the environment's replicas can
// be dialled from here. Every other command line it hands, before doing anything, to rfenv-full
// beside it, by exec: same process, arguments, streams and exit code, the way the docker CLI hands
// `docker buildx` to a plugin binary. After a call, what needs Docker (following a replica that
// moved, saying why one broke) it asks of rfenv-full's hidden `__front` command, so that both
// binaries answer a call alike.
package front

import (
	"context"
	"io"
	"slices"

	"github.com/spf13/pflag"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/cmd/flags"
	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/pkg/endpoint"
	"github.com/rfenv/rfenv/pkg/state"
)

// Run runs a command line and returns the process's exit code: a plain call itself, anything else
// through the full binary.
func Run(ctx context.Context, ios *iostreams.IOStreams, getenv func(string) string, args []string) int {
	if !slices.Contains(args, "call") {
		return runFull(ios, getenv, args)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return runFull(ios, getenv, args) // it reports the configuration's error
	}
	line, ok := parseCall(args, cfg.String(config.KeyTimeout))
	if !ok {
		return runFull(ios, getenv, args)
	}
	if line.Global.StateDir == "" {
		line.Global.StateDir = cfg.String(config.KeyStateDir)
	}
	code, handOff := runCall(ctx, ios, getenv, line)
	if handOff {
		return runFull(ios, getenv, args)
	}
	return code
}

// callLine is a command line the front runs: `rfenv [global flags] call NAME METHOD [flags]`.
type callLine struct {
	flags.Global
	Call flags.Call
}

// frontFlags are the flags the front handles; a line that sets any other goes to the full binary
// (ssh flags: an environment the front calls has no ssh:// host; --batch and --concurrency:
// batches run in pkg/batch, which the front leaves out).
var frontFlags = map[string]bool{
	"state-dir": true, "verbose": true, "quiet": true,
	"arg": true, "arg-str": true, "args-json": true, "timeout": true, "retries": true, "lb": true,
	"session": true,
}

// parseCall reads a call line with the same flag definitions as the cobra command tree, and says
// whether the front runs it. It runs none that cobra could read differently or would reject: global
// flags before "call" only, exactly NAME and METHOD after it, no "--", no help, no flag left to
// the full binary, and flags that pass call's own checks.
func parseCall(args []string, defaultTimeout string) (callLine, bool) {
	var l callLine
	if slices.Contains(args, "--") {
		return l, false
	}
	sub := pflag.NewFlagSet("call", pflag.ContinueOnError)
	l.Global.Register(sub) // cobra takes global flags after the command name too
	l.Call.Register(sub, defaultTimeout)
	top := pflag.NewFlagSet("rfenv", pflag.ContinueOnError)
	l.Global.Register(top)
	top.SetInterspersed(false) // stop at the command name, as cobra does
	for _, fs := range []*pflag.FlagSet{top, sub} {
		fs.Usage = func() {}
		fs.SetOutput(io.Discard)
	}
	if err := top.Parse(args); err != nil {
		return l, false
	}
	rest := top.Args()
	if len(rest) == 0 || rest[0] != "call" {
		return l, false
	}
	if err := sub.Parse(rest[1:]); err != nil || sub.NArg() != 2 {
		return l, false
	}
	ok := true
	for _, fs := range []*pflag.FlagSet{top, sub} {
		fs.Visit(func(f *pflag.Flag) { ok = ok && frontFlags[f.Name] })
	}
	if !ok {
		return l, false
	}
	if _, err := l.Call.Check(); err != nil {
		return l, false // the full binary says what is wrong
	}
	l.Call.Name, l.Call.Method = sub.Arg(0), sub.Arg(1)
	return l, true
}

// callable says whether the front can call rec's replicas itself: a Docker environment none of
// whose replicas is on an ssh:// host (those are dialled through the host's SSH connection), or
// attached servers. Kubernetes replicas are reached through the API server.
func callable(rec *state.Environment) bool {
	switch rec.Backend {
	case state.BackendAttached:
		return true
	case state.BackendDocker:
		for _, in := range rec.Instances {
			if _, ssh := endpoint.OverSSH(in); ssh {
				return false
			}
		}
		return len(rec.Instances) > 0
	}
	return false
}
