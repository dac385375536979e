package cmd

import (
	"context"
	"log/slog"
	"os"
	"sync"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/cmd/flags"
	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/cmd/output"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// Factory holds what every command needs: streams, configuration, global flags, and a lazily made
// library client (so commands that need no client, like version, pay nothing for it).
type Factory struct {
	IO     *iostreams.IOStreams
	Config *config.Config
	Getenv func(string) string

	flags.Global // the global flags

	once   sync.Once
	client *rfenv.Client
	err    error
}

// NewFactory returns a Factory for the streams and environment.
func NewFactory(ios *iostreams.IOStreams, getenv func(string) string) *Factory {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &Factory{IO: ios, Getenv: getenv}
}

// Client returns the library client, made on first use.
func (f *Factory) Client() (*rfenv.Client, error) {
	f.once.Do(func() {
		f.client, f.err = rfenv.New(
			rfenv.WithStateDir(f.StateDir),
			rfenv.WithLogger(f.Logger()),
			rfenv.WithSSH(rfenv.SSHConfig{
				KnownHostsPath: f.SSHKnownHosts,
				ConfigPath:     f.SSHConfigFile,
				IdentityFiles:  f.SSHIdentityFile,
				AcceptNew:      f.SSHAcceptNew,
			}),
		)
	})
	return f.client, f.err
}

// Env returns the named environment from the state file, ready to call; the caller releases it.
func (f *Factory) Env(ctx context.Context, name string, opts ...rfenv.EnvOption) (*rfenv.Env, error) {
	client, err := f.Client()
	if err != nil {
		return nil, err
	}
	return client.Get(ctx, name, opts...)
}

// Close releases the client's connections.
func (f *Factory) Close() {
	if f.client != nil {
		f.client.Close()
	}
}

// Logger writes diagnostics to stderr: warnings by default, everything with --verbose.
func (f *Factory) Logger() *slog.Logger { return f.Global.Logger(f.IO.ErrOut) }

// Printer returns the output printer honouring --quiet.
func (f *Factory) Printer() *output.Printer { return output.New(f.IO, f.Quiet) }
