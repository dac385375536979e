// Package rfenv is the Go library behind the rfenv command: build an environment directory into an
// image, bring up replicas of it on local and remote Docker daemons, call its methods with load
// balancing, health tracking and deadlines, and tear it down. Environments are remembered in a state
// file, so separate processes share them.
//
// A Client holds the state store and the connections to Docker hosts; one per process is typical:
//
//	c, err := rfenv.New()
//	env, err := c.Up(ctx, "affine:latest", rfenv.WithReplicas(3))
//	res, err := env.Call(ctx, "evaluate", map[string]any{"task_type": "sat"})
//	err = env.Close(ctx) // removes the replicas
package rfenv

import (
	"context"
	"log/slog"
	"sync"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/sshx"
	"github.com/rfenv/rfenv/pkg/state"
)

// Client is the entry point of the library. It is safe for concurrent use.
type Client struct {
	store *state.Store
	hosts *dockerhost.Connector
	log   *slog.Logger
	cfg   clientConfig

	backends []backend.Backend // see backends.go

	sshMu   sync.Mutex
	sshPool *sshx.Pool // one SSH connection per server; see openSSH
}

type clientConfig struct {
	stateDir string
	logger   *slog.Logger
	ssh      SSHConfig
}

// SSHConfig configures connections to ssh:// hosts.
type SSHConfig struct {
	KnownHostsPath string // default ~/.ssh/known_hosts
	ConfigPath     string // default ~/.ssh/config
	IdentityFiles  []string
	AcceptNew      bool // trust a host's key on first use and record it
}

// Option configures a Client.
type Option func(*clientConfig)

// WithStateDir sets the state directory (default: $RFENV_STATE_DIR, $XDG_STATE_HOME/rfenv or
// ~/.local/state/rfenv).
func WithStateDir(dir string) Option { return func(c *clientConfig) { c.stateDir = dir } }

// WithLogger sets the logger for progress and diagnostics (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *clientConfig) { c.logger = l } }

// WithSSH configures SSH connections to remote hosts.
func WithSSH(s SSHConfig) Option { return func(c *clientConfig) { c.ssh = s } }

// New returns a Client.
func New(opts ...Option) (*Client, error) {
	var cfg clientConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	st, err := state.Open(cfg.stateDir)
	if err != nil {
		return nil, err
	}
	c := &Client{store: st, log: cfg.logger, cfg: cfg}
	c.hosts = dockerhost.NewConnector(dockerhost.Options{SSH: c.openSSH, Logger: cfg.logger})
	c.backends = newBackends(backend.Deps{Store: st, Hosts: c.hosts, Log: cfg.logger})
	return c, nil
}

// Store is the state store the client uses.
func (c *Client) Store() *state.Store { return c.store }

// Close releases connections to hosts. Environments keep running; see Env.Close to remove one.
func (c *Client) Close() error {
	err := c.hosts.Close()
	c.closeSSH()
	return err
}

// conn connects to one host.
func (c *Client) conn(ctx context.Context, spec host.Spec) (*dockerhost.Conn, error) {
	return c.hosts.Get(ctx, spec)
}

// lockEnv serialises up and down of one environment across processes.
func (c *Client) lockEnv(ctx context.Context, name string) (func(), error) {
	unlock, err := c.store.LockEnvironment(ctx, name)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errs.Wrap(errs.Interrupted, err)
		}
		return nil, errs.Wrap(errs.Conflict, err)
	}
	return unlock, nil
}

// putEnv records an environment in the state file, replacing its previous entry.
func (c *Client) putEnv(ctx context.Context, rec *state.Environment) error {
	return c.store.Update(ctx, func(f *state.File) error {
		f.Environments[rec.Name] = rec
		return nil
	})
}
