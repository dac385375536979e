package rfenv

import (
	"context"
	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/backend/attached"
	"github.com/rfenv/rfenv/pkg/backend/docker"
	"github.com/rfenv/rfenv/pkg/backend/kube"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/state"
)

// newBackends is the registry: every backend the library can dispatch to. A new backend is one
// package and one line here.
func newBackends(d backend.Deps) []backend.Backend {
	return []backend.Backend{
		docker.New(d),
		attached.New(d),
		kube.New(d),
	}
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
	return nil, errs.New(errs.Usage, "environment %s runs on backend %q, which this rfenv does not know; use the rfenv that brought it up", rec.Name, kind)
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

// FollowReplica asks the backend of environment name where replica runs now. It returns the
// replica's instance and true when it moved and answers there with the environment's token (the
// state file then records it); false when it did not move or its backend does not follow replicas.
func (c *Client) FollowReplica(ctx context.Context, name string, replica int) (state.Instance, bool, error) {
	rec, err := c.store.Get(ctx, name)
	if err != nil {
		return state.Instance{}, false, err
	}
	b, err := c.backendOf(rec)
	if err != nil {
		return state.Instance{}, false, err
	}
	f, ok := b.(backend.Follower)
	if !ok {
		return state.Instance{}, false, nil
	}
	return f.Follow(ctx, rec, replica)
}

// ExplainReplica says what the backend of environment name knows to be wrong with replica (""
// when nothing is known to be); afterCall says a call just broke on it.
func (c *Client) ExplainReplica(ctx context.Context, name string, replica int, afterCall bool) (string, error) {
	rec, err := c.store.Get(ctx, name)
	if err != nil {
		return "", err
	}
	b, err := c.backendOf(rec)
	if err != nil {
		return "", err
	}
	return b.Explain(ctx, rec, replica, afterCall), nil
}
