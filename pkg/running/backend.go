package running

import (
	"context"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// Backend is what an Env asks of the backend that runs its replicas (pkg/backend's backends are
// ones; the lean front asks the full binary).
type Backend interface {
	// Explain says what is wrong with a replica ("" when nothing is known to be). afterCall says a
	// call just broke on it.
	Explain(ctx context.Context, env *state.Environment, replica int, afterCall bool) string
}

// Follower is a backend whose replicas can come back at a new address (a restarted container). The
// Env asks it about a replica that stopped answering.
type Follower interface {
	// Follow finds where replica runs now. It returns the replica's updated instance and true when
	// it moved and answers there with the environment's token, and records that in the state file.
	Follow(ctx context.Context, env *state.Environment, replica int) (state.Instance, bool, error)
	// Endpoints makes the pool's endpoints of instances.
	Endpoints(env *state.Environment, instances []state.Instance) []pool.Endpoint
}

// Watcher follows an environment's replicas while it is held, for backends whose replicas come and
// go on their own (Kubernetes pods).
type Watcher interface {
	// Start feeds the current endpoints to set whenever they change, until Stop.
	Start(set func([]pool.Endpoint))
	Stop()
}
