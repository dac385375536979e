// Package running is an environment whose replicas run: the pool over them, its sessions, following
// a replica that moved and explaining a call that broke. It holds everything a call needs and
// nothing that starts replicas (pkg/rfenv, which re-exports Env as rfenv.Env), so that the lean
// front binary (cmd/front) calls through the same code as the library while linking no Docker
// client. What only a backend knows (where a moved container is now, why one died) it asks through
// the Backend it is given.
package running

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/rfenv/rfenv/pkg/endpoint"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// Env is a running environment: a pool of replicas to call. It is safe for concurrent use by many
// goroutines; calls reuse keep-alive connections per replica.
type Env struct {
	d    Deps
	rec  *state.Environment
	pool *pool.Pool
	// watch keeps the pool's endpoints current for backends whose replicas come and go on their
	// own (Kubernetes pods); nil otherwise.
	watch Watcher
	// sessionCache holds the session records this process resolved (key → state.Session), so a
	// session's calls read the shared table once.
	sessionCache sync.Map

	recMu    sync.RWMutex // guards rec, which follow replaces when a replica moved (see follow.go)
	followMu sync.Mutex   // one follow at a time
}

// Deps are what an Env is made with: the state store (sessions, the shared round-robin counter),
// the logger, the backend that runs its replicas, and how to remove it.
type Deps struct {
	Store *state.Store
	Log   *slog.Logger
	// Backend explains broken replicas and, if it is a Follower, follows moved ones; nil knows
	// nothing.
	Backend Backend
	// Remove removes the environment's replicas and forgets it (Env.Close); nil cannot.
	Remove func(ctx context.Context, name string) error
}

// New makes an Env for rec over the pool's endpoints, and starts following its replicas through w
// (nil when they change only through up).
func New(rec *state.Environment, eps []pool.Endpoint, w Watcher, d Deps, opts ...Option) (*Env, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	cfg := config{pool: endpoint.PoolOptions(rec, d.Log)}
	for _, o := range opts {
		o(&cfg)
	}
	po := cfg.pool
	if cfg.sharedRR {
		name := rec.Name
		po.Counter = func() (uint64, error) { return d.Store.NextCounter(context.Background(), name) }
	}
	p, err := pool.New(eps, po)
	if err != nil {
		if w != nil {
			w.Stop()
		}
		return nil, err
	}
	e := &Env{d: d, rec: rec, pool: p}
	if w != nil {
		e.watch = w
		w.Start(p.SetEndpoints)
	}
	return e, nil
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
// what its backend knows (for Docker: exited, removed, killed for running out of memory).
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
	e.Release()
	if e.d.Remove == nil {
		return errs.New(errs.Usage, "environment %s cannot be removed from here; run `rfenv down %s`", e.Name(), e.Name())
	}
	return e.d.Remove(ctx, e.Name())
}

// Release closes this process's connections to the replicas and leaves them running.
func (e *Env) Release() {
	e.pool.Close()
	if e.watch != nil {
		e.watch.Stop()
	}
}

// Option adjusts how an Env calls its replicas.
type Option func(*config)

type config struct {
	pool     pool.Options
	sharedRR bool
}

// WithRetries lets calls that may have reached a replica be retried on another one (side effects
// could then happen twice). Calls that certainly never reached one are always failed over.
func WithRetries(n int) Option { return func(o *config) { o.pool.Retries = n } }

// WithBalancing overrides the environment's balancing strategy for this process.
func WithBalancing(strategy string) Option {
	return func(o *config) { o.pool.Strategy = strategy }
}

// WithCallTimeout sets the deadline of calls whose context has none.
func WithCallTimeout(d time.Duration) Option {
	return func(o *config) { o.pool.DefaultTimeout = d }
}

// WithMaxInflight overrides, for this process, how many calls it keeps in flight on each replica
// (the budget recorded at up); calls beyond it wait in a FIFO queue.
func WithMaxInflight(n int) Option { return func(o *config) { o.pool.MaxInflight = n } }

// WithSharedRoundRobin numbers round-robin picks through a counter beside the state file, so that
// separate processes (one `rfenv call` each) still take turns.
func WithSharedRoundRobin() Option { return func(o *config) { o.sharedRR = true } }
