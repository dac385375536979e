package rfenv

import (
	"context"
	"time"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/running"
	"github.com/rfenv/rfenv/pkg/state"
)

// Env is a running environment: a pool of replicas to call (see pkg/running, which the lean front
// binary shares). It is safe for concurrent use by many goroutines.
type Env = running.Env

// Session pins calls to the replica that holds an episode (see running.Session).
type Session = running.Session

// SessionInfo describes an open session.
type SessionInfo = running.SessionInfo

// DefaultSessionTTL is how long a session may idle before it expires (UpOptions.SessionTTL).
const DefaultSessionTTL = running.DefaultSessionTTL

// EnvOption adjusts how an Env calls its replicas.
type EnvOption = running.Option

// WithRetries lets calls that may have reached a replica be retried on another one (side effects
// could then happen twice). Calls that certainly never reached one are always failed over.
func WithRetries(n int) EnvOption { return running.WithRetries(n) }

// WithBalancing overrides the environment's balancing strategy for this process.
func WithBalancing(strategy string) EnvOption { return running.WithBalancing(strategy) }

// WithCallTimeout sets the deadline of calls whose context has none.
func WithCallTimeout(d time.Duration) EnvOption { return running.WithCallTimeout(d) }

// WithMaxInflight overrides, for this process, how many calls it keeps in flight on each replica
// (the budget recorded at up); calls beyond it wait in a FIFO queue.
func WithMaxInflight(n int) EnvOption { return running.WithMaxInflight(n) }

// WithSharedRoundRobin numbers round-robin picks through a counter beside the state file, so that
// separate processes (one `rfenv call` each) still take turns.
func WithSharedRoundRobin() EnvOption { return running.WithSharedRoundRobin() }

// Get returns the environment named name from the state file, ready to call. On Docker hosts it
// makes no Docker calls: replicas are reached at the addresses recorded by up; on Kubernetes it lists
// the current pods (one API request) and follows them while the Env is held.
func (c *Client) Get(ctx context.Context, name string, opts ...EnvOption) (*Env, error) {
	rec, err := c.store.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	b, err := c.backendOf(rec)
	if err != nil {
		return nil, err
	}
	op, err := b.Open(ctx, rec)
	if err != nil {
		return nil, err
	}
	return c.newEnv(b, op.Env, op, opts...)
}

// newEnv makes an Env of rec over what backend b opened (rec may hold more replicas than op, for
// an Env of one of them), with the same options as Get, and starts following its replicas if the
// backend watches them.
func (c *Client) newEnv(b backend.Backend, rec *state.Environment, op backend.Opened, opts ...EnvOption) (*Env, error) {
	return running.New(rec, op.Endpoints, op.Watcher, running.Deps{
		Store:   c.store,
		Log:     c.log,
		Backend: b,
		Remove: func(ctx context.Context, name string) error {
			_, err := c.Down(ctx, []string{name}, DownOptions{})
			return err
		},
	}, opts...)
}

// List returns the environments in the state file.
func (c *Client) List(ctx context.Context) ([]*state.Environment, error) {
	f, err := c.store.Load(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*state.Environment, 0, len(f.Environments))
	for _, n := range f.Names() {
		out = append(out, f.Environments[n])
	}
	return out, nil
}
