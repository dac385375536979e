package rfenv

import (
	"context"

	"github.com/rfenv/rfenv/pkg/backend"

	"github.com/rfenv/rfenv/pkg/state"
)

// GetReplicas returns one Env per replica of the named environment, each calling that replica
// only (for checks that must compare replicas, such as validate). The caller releases each. An
// environment on Kubernetes, whose pods the Deployment replaces at will, gives a single Env over
// all of them.
func (c *Client) GetReplicas(ctx context.Context, name string, opts ...EnvOption) ([]*Env, error) {
	rec, err := c.store.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	b, err := c.backendOf(rec)
	if err != nil {
		return nil, err
	}
	if b.Kind() == backend.KindKube || len(rec.Instances) <= 1 {
		env, err := c.Get(ctx, name, opts...)
		if err != nil {
			return nil, err
		}
		return []*Env{env}, nil
	}
	var out []*Env
	for _, in := range rec.Instances {
		// The backend opens a view of the entry with that replica alone (no remote call for Docker
		// or attached servers); the Env keeps the whole entry.
		view := *rec
		view.Instances = []state.Instance{in}
		op, err := b.Open(ctx, &view)
		var env *Env
		if err == nil {
			env, err = c.newEnv(b, rec, op, opts...)
		}
		if err != nil {
			for _, e := range out {
				e.Release()
			}
			return nil, err
		}
		out = append(out, env)
	}
	return out, nil
}
