// Package backend is the contract between the library (pkg/rfenv) and the places replicas run:
// Docker daemons (local, unix://, ssh://), Kubernetes clusters, and servers rfenv did not start. The
// library picks a backend once — from the hosts given to up, or from the kind a state entry records —
// and from then on asks it, never the host kind, what to do.
//
// A new backend is one package implementing Backend plus one line in pkg/rfenv/backends.go.
package backend

import (
	"context"
	"io"
	"log/slog"

	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/running"
	"github.com/rfenv/rfenv/pkg/state"
)

// Kinds of backend, as state entries record them (state.Environment.Backend).
const (
	KindDocker   = state.BackendDocker
	KindKube     = state.BackendKube
	KindAttached = state.BackendAttached
)

// Backend runs and reaches the replicas of environments in one kind of place.
type Backend interface {
	// Kind is the name state entries record for environments of this backend.
	Kind() string
	// Handles says whether replicas can be placed on spec by this backend.
	Handles(spec host.Spec) bool
	// Up reconciles the environment to req (keep, start and remove replicas), waits until they are
	// ready and records it in the state file. The library holds the environment's lock.
	Up(ctx context.Context, req UpRequest) (Opened, error)
	// Open returns what the pool needs to call a recorded environment. It should make no remote
	// calls when the entry says where the replicas are.
	Open(ctx context.Context, env *state.Environment) (Opened, error)
	// Down removes the environment's replicas on hosts (the entry's and any the caller added; env
	// is nil when the state file has no entry) and returns how many it removed. The library holds
	// the environment's lock and forgets the entry.
	Down(ctx context.Context, name string, env *state.Environment, hosts []host.Spec) (int, error)
	// Prune removes replicas of this state directory on hosts whose environment known does not
	// list. It must list what runs before it calls known, so that an up that records its entry
	// meanwhile keeps its replicas.
	Prune(ctx context.Context, hosts []host.Spec, known func(context.Context) (map[string]bool, error)) ([]Orphan, error)
	// Logs writes the replicas' output to w.
	Logs(ctx context.Context, env *state.Environment, o LogsOptions, w io.Writer) error
	// Explain says what is wrong with a replica ("" when nothing is known to be). afterCall says a
	// call just broke on it.
	Explain(ctx context.Context, env *state.Environment, replica int, afterCall bool) string
}

// Follower is a backend whose replicas can come back at a new address (a restarted container); the
// Env (pkg/running) asks it about a replica that stopped answering.
type Follower = running.Follower

// UpRequest is what up asks a backend for.
type UpRequest struct {
	Image   string
	Options UpOptions // normalised: every default applied
	Hosts   []host.Spec
	// Prev is the environment's previous entry, nil if none.
	Prev *state.Environment
}

// Opened is an environment ready for calls: its entry, the pool's endpoints, and a watcher that
// keeps them current (nil when they only change through up).
type Opened struct {
	Env       *state.Environment
	Endpoints []pool.Endpoint
	Watcher   Watcher
}

// Watcher follows an environment's replicas while it is held, for backends whose replicas come and
// go on their own (Kubernetes pods).
type Watcher = running.Watcher

// Orphan is a replica (container, or Kubernetes object) that no state entry owns.
type Orphan struct {
	Host string `json:"host"`
	ID   string `json:"id"`
	Name string `json:"name"`
	Env  string `json:"env"`
}

// Deps are what the library gives each backend: the state store, the connections to Docker hosts
// and the logger.
type Deps struct {
	Store *state.Store
	Hosts *dockerhost.Connector
	Log   *slog.Logger
}
