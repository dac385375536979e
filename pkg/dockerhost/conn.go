// Package dockerhost connects to the Docker daemons pkg/host names: the local daemon, a unix socket,
// or a remote daemon over SSH. A connection carries both the Docker API client and a dialer that
// reaches container addresses on that host, so a remote container is called through the same SSH
// connection that manages it. It is apart from pkg/host so that what only names hosts (the lean
// front binary among them) links no Docker client.
package dockerhost

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
)

// ContextDialer opens connections; *net.Dialer and SSH connections both are.
type ContextDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Conn is one daemon: its Docker API client and the way to reach its containers' addresses.
type Conn struct {
	Spec   host.Spec
	Docker *client.Client
	dialer ContextDialer
	close  func() error
}

// DialContext reaches an address on the daemon's host: a container's IP and port. For a remote host the
// connection goes through the SSH connection, so nothing needs to be published.
func (c *Conn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.dialer.DialContext(ctx, network, addr)
}

// Close releases the Docker client and, for a remote host, the SSH connection.
func (c *Conn) Close() error {
	err := c.Docker.Close()
	if c.close != nil {
		if cerr := c.close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Options configure how hosts are reached.
type Options struct {
	// SSH opens the SSH transport for an ssh:// host. It returns a dialer for "unix" and "tcp" channels
	// and a function that closes it. Required for ssh:// hosts.
	SSH    func(ctx context.Context, spec host.Spec) (ContextDialer, func() error, error)
	Logger *slog.Logger
}

// Connector hands out one Conn per host for the life of the process, so SSH connections and Docker
// clients are shared by every command and call that needs them. It is safe for concurrent use.
type Connector struct {
	opts  Options
	mu    sync.Mutex
	conns map[string]*connEntry
}

type connEntry struct {
	once sync.Once
	conn *Conn
	err  error
}

// NewConnector returns a Connector with the given options.
func NewConnector(opts Options) *Connector {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Connector{opts: opts, conns: map[string]*connEntry{}}
}

// Get returns the connection to spec's daemon, creating it on first use. A failed attempt is not
// cached, so a later call can try again.
func (c *Connector) Get(ctx context.Context, spec host.Spec) (*Conn, error) {
	c.mu.Lock()
	e, ok := c.conns[spec.Raw]
	if !ok {
		e = &connEntry{}
		c.conns[spec.Raw] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.conn, e.err = c.open(ctx, spec) })
	if e.err != nil {
		c.mu.Lock()
		if c.conns[spec.Raw] == e {
			delete(c.conns, spec.Raw)
		}
		c.mu.Unlock()
	}
	return e.conn, e.err
}

// Close closes every connection opened so far.
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for k, e := range c.conns {
		if e.conn != nil {
			if err := e.conn.Close(); err != nil && first == nil {
				first = err
			}
		}
		delete(c.conns, k)
	}
	return first
}

func (c *Connector) open(ctx context.Context, spec host.Spec) (*Conn, error) {
	switch spec.Kind {
	case host.Local:
		cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, errs.Wrap(errs.Infra, fmt.Errorf("docker client for %s: %w (check DOCKER_HOST)", spec, err))
		}
		return &Conn{Spec: spec, Docker: cli, dialer: &net.Dialer{}}, nil
	case host.Unix:
		cli, err := client.New(client.WithHost("unix://"+spec.Socket), client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, errs.Wrap(errs.Infra, fmt.Errorf("docker client for %s: %w", spec, err))
		}
		return &Conn{Spec: spec, Docker: cli, dialer: &net.Dialer{}}, nil
	case host.SSH:
		if c.opts.SSH == nil {
			return nil, errs.New(errs.Usage, "host %s: no SSH transport configured", spec)
		}
		d, closeFn, err := c.opts.SSH(ctx, spec)
		if err != nil {
			return nil, err
		}
		socket := spec.Socket
		if socket == "" {
			socket = "/var/run/docker.sock"
		}
		cli, err := client.New(
			// The host URL only shapes request paths; every connection goes through the dialer.
			client.WithHost("http://docker"),
			client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", socket)
			}),
			client.WithAPIVersionNegotiation(),
		)
		if err != nil {
			closeFn()
			return nil, errs.Wrap(errs.Infra, fmt.Errorf("docker client for %s: %w", spec, err))
		}
		return &Conn{Spec: spec, Docker: cli, dialer: d, close: closeFn}, nil
	}
	if spec.Kind == host.K8s {
		return nil, errs.New(errs.Conflict, "host %s is a Kubernetes cluster, not a Docker daemon (an environment runs either on a cluster or on Docker hosts; `rfenv down` it first to move it)", spec)
	}
	return nil, errs.New(errs.Usage, "host %s: unsupported kind %q", spec, spec.Kind)
}
