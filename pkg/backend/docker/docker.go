// Package docker is the backend for Docker daemons: the local one, unix:// sockets and ssh:// hosts.
// Each replica is a labelled container reached at its bridge address (directly, or through the SSH
// connection of a remote host).
package docker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/endpoint"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// hostConcurrency bounds how many hosts are dialled and worked on at once.
const hostConcurrency = 8

// Backend runs replicas as containers on Docker daemons.
type Backend struct {
	store *state.Store
	hosts *dockerhost.Connector
	log   *slog.Logger
}

var (
	_ backend.Backend  = (*Backend)(nil)
	_ backend.Follower = (*Backend)(nil)
)

// New returns the Docker backend.
func New(d backend.Deps) *Backend { return &Backend{store: d.Store, hosts: d.Hosts, log: d.Log} }

// Kind implements backend.Backend.
func (c *Backend) Kind() string { return backend.KindDocker }

// Handles implements backend.Backend: the local daemon, unix:// sockets and ssh:// hosts.
func (c *Backend) Handles(sp host.Spec) bool {
	return sp.Kind == host.Local || sp.Kind == host.Unix || sp.Kind == host.SSH
}

// Open implements backend.Backend: replicas are reached at the addresses up recorded, with no
// Docker call.
func (c *Backend) Open(_ context.Context, rec *state.Environment) (backend.Opened, error) {
	return backend.Opened{Env: rec, Endpoints: c.Endpoints(rec, rec.Instances)}, nil
}

// Endpoints implements backend.Follower: each container at its address, through the host's SSH
// connection for remote ones.
func (c *Backend) Endpoints(rec *state.Environment, instances []state.Instance) []pool.Endpoint {
	eps := make([]pool.Endpoint, 0, len(instances))
	for _, in := range instances {
		ep := endpoint.Of(rec, in)
		if sp, ok := endpoint.OverSSH(in); ok {
			ep.Dialer = &lazyHostDialer{c: c, spec: sp}
		}
		eps = append(eps, ep)
	}
	return eps
}

// newPool makes a pool over instances, for up's own readiness checks.
func (c *Backend) newPool(rec *state.Environment, instances []state.Instance) (*pool.Pool, error) {
	return pool.New(c.Endpoints(rec, instances), pool.Options{Name: rec.Name, Token: rec.Token, Kind: rec.Type, Strategy: rec.Balancer, Logger: c.log})
}

// lazyHostDialer connects to a remote host only when a call first needs it.
type lazyHostDialer struct {
	c    *Backend
	spec host.Spec
}

func (d *lazyHostDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := d.c.conn(ctx, d.spec)
	if err != nil {
		return nil, err
	}
	return conn.DialContext(ctx, network, addr)
}

// conn connects to one host.
func (c *Backend) conn(ctx context.Context, spec host.Spec) (*dockerhost.Conn, error) {
	return c.hosts.Get(ctx, spec)
}

// putEnv records an environment in the state file, replacing its previous entry.
func (c *Backend) putEnv(ctx context.Context, rec *state.Environment) error {
	return c.store.Update(ctx, func(f *state.File) error {
		f.Environments[rec.Name] = rec
		return nil
	})
}

// connectAll connects to every host, a bounded number at once. The first host that cannot be reached
// fails the whole operation, naming that host.
func (c *Backend) connectAll(ctx context.Context, specs []host.Spec) (map[string]*dockerhost.Conn, error) {
	var mu sync.Mutex
	out := map[string]*dockerhost.Conn{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hostConcurrency)
	for _, sp := range specs {
		g.Go(func() error {
			conn, err := c.conn(gctx, sp)
			if err != nil {
				return err
			}
			if _, err := conn.Docker.Ping(gctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
				return errs.Wrap(errs.Infra, fmt.Errorf("host %s: the Docker daemon did not answer: %w", sp, err))
			}
			mu.Lock()
			out[sp.Raw] = conn
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
