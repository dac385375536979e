package rfenv

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// Env is a running environment: a pool of replicas to call. It is safe for concurrent use by many
// goroutines; calls reuse keep-alive connections per replica.
type Env struct {
	c    *Client
	rec  *state.Environment
	pool *pool.Pool
	// watch keeps the pool's endpoints current for backends whose replicas come and go on their
	// own (Kubernetes pods); nil otherwise.
	watch backend.Watcher
	// sessionCache holds the session records this process resolved (key → state.Session), so a
	// session's calls read the shared table once.
	sessionCache sync.Map

	recMu    sync.RWMutex // guards rec, which follow replaces when a replica moved (see follow.go)
	followMu sync.Mutex   // one follow at a time
}

// Name is the environment's name.
func (e *Env) Name() string { return e.record().Name }

// Record is the environment as the state file records it.
func (e *Env) Record() state.Environment { return *e.record() }

// Call calls method with keyword arguments (a map, a struct, or nil) and returns its JSON result.
// The context's deadline is enforced by the server too: an async method is cancelled there.
func (e *Env) Call(ctx context.Context, method string, kwargs any) (json.RawMessage, error) {
	return e.call(ctx, pool.Request{Method: method, Kwargs: kwargs})
}

// CallArgs calls method with positional and keyword arguments.
func (e *Env) CallArgs(ctx context.Context, method string, args []any, kwargs any) (json.RawMessage, error) {
	return e.call(ctx, pool.Request{Method: method, Args: args, Kwargs: kwargs})
}

// CallInto calls method and decodes its result into out.
func (e *Env) CallInto(ctx context.Context, method string, kwargs any, out any) error {
	res, err := e.Call(ctx, method, kwargs)
	if err != nil {
		return err
	}
	return json.Unmarshal(res, out)
}

// Pool is the environment's replica pool, for batch calls and finer control.
func (e *Env) Pool() *pool.Pool { return e.pool }

// Methods lists the environment's methods.
func (e *Env) Methods(ctx context.Context) ([]pool.Method, error) { return e.pool.Methods(ctx) }

// Stats reports each replica's health and counters; for a replica that does not answer, Error says
// what Docker knows of its container (exited, removed, killed for running out of memory).
func (e *Env) Stats(ctx context.Context) pool.Stats {
	st := e.statsWithContainers(ctx)
	counts := e.sessionCounts()
	for i := range st.Instances {
		st.Instances[i].Sessions = counts[st.Instances[i].Index]
		st.TotalSessions += st.Instances[i].Sessions
	}
	return st
}

// Close removes the environment's replicas and forgets it (the same as `rfenv down NAME`).
func (e *Env) Close(ctx context.Context) error {
	e.pool.Close()
	if e.watch != nil {
		e.watch.Stop()
	}
	_, err := e.c.Down(ctx, []string{e.Name()}, DownOptions{})
	return err
}

// Release closes this process's connections to the replicas and leaves them running.
func (e *Env) Release() {
	e.pool.Close()
	if e.watch != nil {
		e.watch.Stop()
	}
}

// EnvOption adjusts how an Env calls its replicas.
type EnvOption func(*envConfig)

type envConfig struct {
	pool     pool.Options
	sharedRR bool
}

// WithRetries lets calls that may have reached a replica be retried on another one (side effects
// could then happen twice). Calls that certainly never reached one are always failed over.
func WithRetries(n int) EnvOption { return func(o *envConfig) { o.pool.Retries = n } }

// WithBalancing overrides the environment's balancing strategy for this process.
func WithBalancing(strategy string) EnvOption {
	return func(o *envConfig) { o.pool.Strategy = strategy }
}

// WithCallTimeout sets the deadline of calls whose context has none.
func WithCallTimeout(d time.Duration) EnvOption {
	return func(o *envConfig) { o.pool.DefaultTimeout = d }
}

// WithMaxInflight overrides, for this process, how many calls it keeps in flight on each replica
// (the budget recorded at up); calls beyond it wait in a FIFO queue.
func WithMaxInflight(n int) EnvOption { return func(o *envConfig) { o.pool.MaxInflight = n } }

// WithSharedRoundRobin numbers round-robin picks through a counter beside the state file, so that
// separate processes (one `rfenv call` each) still take turns.
func WithSharedRoundRobin() EnvOption { return func(o *envConfig) { o.sharedRR = true } }

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
	return c.newEnv(op, opts...)
}

// newEnv makes an Env over what a backend opened, with the same options as Get, and starts following
// its replicas if the backend watches them.
func (c *Client) newEnv(op backend.Opened, opts ...EnvOption) (*Env, error) {
	env, err := c.envFromEndpoints(op.Env, op.Endpoints, opts...)
	if err != nil {
		if op.Watcher != nil {
			op.Watcher.Stop()
		}
		return nil, err
	}
	if op.Watcher != nil {
		env.watch = op.Watcher
		op.Watcher.Start(env.pool.SetEndpoints)
	}
	return env, nil
}

// envFromEndpoints makes an Env over explicit endpoints.
func (c *Client) envFromEndpoints(rec *state.Environment, eps []pool.Endpoint, opts ...EnvOption) (*Env, error) {
	cfg := envConfig{pool: pool.Options{Name: rec.Name, Token: rec.Token, Kind: rec.Type, Strategy: rec.Balancer, MaxInflight: rec.MaxInflight, Logger: c.log}}
	for _, o := range opts {
		o(&cfg)
	}
	po := cfg.pool
	if cfg.sharedRR {
		name := rec.Name
		po.Counter = func() (uint64, error) { return c.store.NextCounter(context.Background(), name) }
	}
	p, err := pool.New(eps, po)
	if err != nil {
		return nil, err
	}
	return &Env{c: c, rec: rec, pool: p}, nil
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
