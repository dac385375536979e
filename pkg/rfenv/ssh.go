package rfenv

import (
	"context"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/sshx"
)

// openSSH connects to an ssh:// host; the host.Connector keeps one connection per host for the life
// of the process, and sshx re-establishes it when it drops.
func (c *Client) openSSH(ctx context.Context, spec host.Spec) (host.ContextDialer, func() error, error) {
	opts := sshx.Options{
		ConfigFile:    c.cfg.ssh.ConfigPath,
		IdentityFiles: c.cfg.ssh.IdentityFiles,
		AcceptNew:     c.cfg.ssh.AcceptNew,
		Logger:        c.log,
	}
	if c.cfg.ssh.KnownHostsPath != "" {
		opts.KnownHostsFiles = []string{c.cfg.ssh.KnownHostsPath}
	}
	cl, err := sshx.Dial(ctx, spec.Raw, opts)
	if err != nil {
		if errs.KindOf(err) == nil {
			err = errs.Wrap(errs.Infra, err)
		}
		return nil, nil, err
	}
	return cl, cl.Close, nil
}
