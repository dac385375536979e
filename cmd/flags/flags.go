// Package flags defines, once for both binaries, the flags that the lean front (cmd/front) parses
// itself: the global ones and those of `rfenv call`. cmd registers them on its cobra commands (whose
// flag sets are pflag's) and cmd/front on a pflag.FlagSet of its own, so that a command line means
// the same to both.
package flags

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/pkg/callargs"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/running"
)

// Global are the flags every command takes.
type Global struct {
	StateDir        string
	Verbose         bool
	Quiet           bool
	SSHKnownHosts   string
	SSHConfigFile   string
	SSHAcceptNew    bool
	SSHIdentityFile []string
}

// Register defines the global flags on fs.
func (g *Global) Register(fs *pflag.FlagSet) {
	fs.StringVar(&g.StateDir, "state-dir", "", "state directory (default $RFENV_STATE_DIR, $XDG_STATE_HOME/rfenv or ~/.local/state/rfenv)")
	fs.BoolVarP(&g.Verbose, "verbose", "V", false, "show diagnostics and tracebacks")
	fs.BoolVarP(&g.Quiet, "quiet", "q", false, "print no progress or decoration")
	fs.StringVar(&g.SSHKnownHosts, "ssh-known-hosts", "", "known_hosts file for ssh:// hosts (default ~/.ssh/known_hosts)")
	fs.StringVar(&g.SSHConfigFile, "ssh-config", "", "ssh config file (default ~/.ssh/config)")
	fs.BoolVar(&g.SSHAcceptNew, "ssh-accept-new", false, "trust and record the key of an ssh host seen for the first time")
	fs.StringArrayVar(&g.SSHIdentityFile, "ssh-identity", nil, "private key for ssh:// hosts (repeatable)")
}

// Logger writes diagnostics to w (stderr): warnings by default, everything with --verbose.
func (g *Global) Logger(w io.Writer) *slog.Logger {
	level := slog.LevelWarn
	if g.Verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Call are `rfenv call`'s inputs.
type Call struct {
	Name     string
	Method   string
	Arg      []string
	ArgStr   []string
	ArgsJSON string
	Timeout  string
	Retries  int
	Balancer string
	Batch    string
	Conc     int
	Session  string
}

// Register defines call's flags on fs; defaultTimeout is the configured deadline.
func (o *Call) Register(fs *pflag.FlagSet, defaultTimeout string) {
	fs.StringArrayVarP(&o.Arg, "arg", "a", nil, "keyword argument k=v, v parsed as JSON if it can be (repeatable)")
	fs.StringArrayVar(&o.ArgStr, "arg-str", nil, "keyword argument k=v, v always a string (repeatable)")
	fs.StringVar(&o.ArgsJSON, "args-json", "", "all arguments as JSON: an object (keyword) or array (positional); @file or - for stdin")
	fs.StringVar(&o.Timeout, "timeout", defaultTimeout, "deadline of the call: 90, 90s, 1m30s")
	fs.IntVar(&o.Retries, "retries", 0, "retry a call that may have reached a replica up to N times on others (side effects may repeat)")
	fs.StringVar(&o.Balancer, "lb", "", "override the environment's balancing strategy for this call")
	fs.StringVar(&o.Batch, "batch", "", "run one call per JSON line of FILE (- for stdin); writes one JSON line per input, in order")
	fs.IntVarP(&o.Conc, "concurrency", "j", 16, "calls at once with --batch")
	fs.StringVar(&o.Session, "session", "", "run on the replica of session KEY (opened on first use): see `rfenv session`")
}

// EnvOptions are the library options the flags ask for. Round-robin shares its rotation with
// other rfenv processes through a counter beside the state file.
func (o *Call) EnvOptions() []running.Option {
	opts := []running.Option{running.WithSharedRoundRobin()}
	if o.Balancer != "" {
		opts = append(opts, running.WithBalancing(o.Balancer))
	}
	if o.Retries > 0 {
		opts = append(opts, running.WithRetries(o.Retries))
	}
	return opts
}

// Args reads the call's arguments from --arg, --arg-str and --args-json (which may read stdin).
func (o *Call) Args(stdin io.Reader) (callargs.Args, error) {
	return callargs.Parse(callargs.Input{Arg: o.Arg, ArgStr: o.ArgStr, ArgJSON: o.ArgsJSON, Stdin: stdin})
}

// Invoke makes the call the flags describe on env with args, within timeout: on the replica of
// --session when given, else where the balancer picks. It goes through the Env, not its pool, so
// that a lost replica is explained and one that moved is followed.
func (o *Call) Invoke(ctx context.Context, env *running.Env, args callargs.Args, timeout time.Duration) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pos := make([]any, len(args.Args))
	for i, a := range args.Args {
		pos[i] = a
	}
	if o.Session != "" {
		return env.Session(o.Session).CallArgs(ctx, o.Method, pos, args.Kwargs)
	}
	return env.CallArgs(ctx, o.Method, pos, args.Kwargs)
}

// Check validates the flags together and returns the call's deadline.
func (o *Call) Check() (time.Duration, error) {
	timeout, err := config.ParseDuration(o.Timeout)
	if err != nil {
		return 0, errs.New(errs.Usage, "--timeout: %v", err)
	}
	if o.Retries < 0 {
		return 0, errs.New(errs.Usage, "--retries %d: must be 0 or more", o.Retries)
	}
	if o.Session != "" && (o.Retries > 0 || o.Balancer != "") {
		return 0, errs.New(errs.Usage, "--session pins the call to its session's replica: drop --retries and --lb")
	}
	if o.Session != "" && o.Batch != "" {
		return 0, errs.New(errs.Usage, "--batch lines carry their own sessions: put \"session\": \"KEY\" on each line instead of --session")
	}
	if o.Batch != "" && (len(o.Arg)+len(o.ArgStr) > 0 || o.ArgsJSON != "") {
		return 0, errs.New(errs.Usage, "--batch takes the arguments from its lines; drop --arg, --arg-str and --args-json")
	}
	return timeout, nil
}
