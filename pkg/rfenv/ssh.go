package rfenv

import (
	"context"
	"fmt"

	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/sshx"
)

// openSSH connects to an ssh:// host. The dockerhost.Connector keeps one Conn per host spec for the life of
// the process, and the client's sshx.Pool one SSH connection per server: specs that differ only in
// the remote socket (two daemons on one machine) share it. sshx re-establishes it when it drops.
// Errors name the host as the user wrote it, which an ~/.ssh/config alias may not show otherwise.
func (c *Client) openSSH(ctx context.Context, spec host.Spec) (dockerhost.ContextDialer, func() error, error) {
	cl, err := c.sshClients().Get(spec.Raw)
	if err == nil {
		err = cl.Connect(ctx)
	}
	if err != nil {
		err = fmt.Errorf("host %s: %w", spec, err)
		if errs.KindOf(err) == nil {
			err = errs.Wrap(errs.Infra, err)
		}
		return nil, nil, err
	}
	// The pool owns the connection: Client.Close closes it.
	return cl, func() error { return nil }, nil
}

// sshClients returns the pool of SSH connections, made on first use (and again after Close).
func (c *Client) sshClients() *sshx.Pool {
	c.sshMu.Lock()
	defer c.sshMu.Unlock()
	if c.sshPool == nil {
		opts := sshx.Options{
			ConfigFile:    c.cfg.ssh.ConfigPath,
			IdentityFiles: c.cfg.ssh.IdentityFiles,
			AcceptNew:     c.cfg.ssh.AcceptNew,
			Logger:        c.log,
		}
		if c.cfg.ssh.KnownHostsPath != "" {
			opts.KnownHostsFiles = []string{c.cfg.ssh.KnownHostsPath}
		}
		c.sshPool = sshx.NewPool(opts)
	}
	return c.sshPool
}

// closeSSH closes every SSH connection; a later use opens new ones.
func (c *Client) closeSSH() {
	c.sshMu.Lock()
	p := c.sshPool
	c.sshPool = nil
	c.sshMu.Unlock()
	if p != nil {
		p.Close()
	}
}
