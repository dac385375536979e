package rfenv

import (
	"context"
	"errors"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/backend/attached"
	"github.com/rfenv/rfenv/pkg/backend/docker"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/state"
)

// newBackends is the registry: every backend the library can dispatch to. A new backend is one
// package and one line here (or in backends_full.go, for one the lean front binary leaves out).
func newBackends(d backend.Deps) []backend.Backend {
	return append([]backend.Backend{
		docker.New(d),
		attached.New(d),
	}, fullBackends(d)...)
}

// backendNamed returns the backend of a kind.
func (c *Client) backendNamed(kind string) (backend.Backend, bool) {
	for _, b := range c.backends {
		if b.Kind() == kind {
			return b, true
		}
	}
	return nil, false
}

// backendOf is the backend that runs a recorded environment: the kind its entry records.
func (c *Client) backendOf(rec *state.Environment) (backend.Backend, error) {
	kind := recordedBackend(rec)
	if b, ok := c.backendNamed(kind); ok {
		return b, nil
	}
	if kind == backend.KindKube || kind == backend.KindDocker || kind == backend.KindAttached {
		return nil, &backend.NotLinkedError{Env: rec.Name, Backend: kind}
	}
	return nil, errs.New(errs.Usage, "environment %s runs on backend %q, which this rfenv does not know; use the rfenv that brought it up", rec.Name, kind)
}

// Linked checks that this build links the backend of environment name (nil when the state file
// has no such entry). The lean front binary asks before it runs a command, to hand environments of
// the backends it leaves out to the full binary.
func (c *Client) Linked(ctx context.Context, name string) error {
	rec, err := c.store.Get(ctx, name)
	if err != nil {
		return nil
	}
	_, err = c.backendOf(rec)
	var nl *backend.NotLinkedError
	if errors.As(err, &nl) {
		return err
	}
	return nil
}

// backendFor is the one backend that handles every host spec. One environment runs in one place: a
// cluster cannot be mixed with Docker hosts.
func (c *Client) backendFor(specs []host.Spec) (backend.Backend, error) {
	var found backend.Backend
	for _, sp := range specs {
		var b backend.Backend
		for _, cand := range c.backends {
			if cand.Handles(sp) {
				b = cand
				break
			}
		}
		switch {
		case b == nil:
			return nil, errs.New(errs.Usage, "host %s: no backend runs replicas there", sp)
		case found != nil && found.Kind() != b.Kind():
			if found.Kind() == backend.KindKube || b.Kind() == backend.KindKube {
				return nil, errs.New(errs.Usage, "a k8s:// host cannot be combined with other hosts in one environment; give it alone (the cluster places the replicas)")
			}
			return nil, errs.New(errs.Usage, "hosts of the %s and %s backends cannot be combined in one environment", found.Kind(), b.Kind())
		}
		found = b
	}
	return found, nil
}

// groupByBackend splits host specs by the backend that handles them, in registry order.
func (c *Client) groupByBackend(specs []host.Spec) ([]backend.Backend, map[string][]host.Spec) {
	by := map[string][]host.Spec{}
	var order []backend.Backend
	for _, sp := range specs {
		for _, b := range c.backends {
			if b.Handles(sp) {
				if _, seen := by[b.Kind()]; !seen {
					order = append(order, b)
				}
				by[b.Kind()] = append(by[b.Kind()], sp)
				break
			}
		}
	}
	return order, by
}

// recordedBackend is the kind of backend an entry was brought up with: the one it records (every
// entry of schema 2 does), else the one its hosts imply, as schema 1 decided it.
func recordedBackend(rec *state.Environment) string {
	if rec.Backend != "" {
		return rec.Backend
	}
	if rec.Attached {
		return backend.KindAttached
	}
	for _, h := range rec.Hosts {
		if sp, err := host.Parse(h); err == nil && sp.Kind == host.K8s {
			return backend.KindKube
		}
	}
	for _, in := range rec.Instances {
		if sp, err := host.Parse(in.Host); err == nil && sp.Kind == host.K8s {
			return backend.KindKube
		}
	}
	return backend.KindDocker
}
