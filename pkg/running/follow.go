package running

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// record is the environment's entry as this Env knows it (follow can replace it).
func (e *Env) record() *state.Environment {
	e.recMu.RLock()
	defer e.recMu.RUnlock()
	return e.rec
}

// call is a pool call that follows replicas that moved: when no replica could take it (nothing ran)
// and some do not answer, it asks the backend where they run now and, if any moved, tries once more.
func (e *Env) call(ctx context.Context, req pool.Request) (json.RawMessage, error) {
	res, err := e.pool.Call(ctx, req)
	if err != nil && e.mayHaveMoved(ctx, err) && e.followUnreachable(ctx) {
		res, err = e.pool.Call(ctx, req)
	}
	if err != nil {
		return nil, e.Explain(ctx, err)
	}
	return res, nil
}

// mayHaveMoved says whether a call error could come from replicas at stale addresses: an
// infrastructure error that is not a call lost mid-way (which may have run, so it is not retried).
func (e *Env) mayHaveMoved(ctx context.Context, err error) bool {
	if ctx.Err() != nil || !pool.NotPlaced(err) {
		return false
	}
	_, ok := e.follower()
	return ok
}

func (e *Env) follower() (Follower, bool) {
	f, ok := e.d.Backend.(Follower)
	return f, ok
}

// unreachable lists the replicas that do not answer, or answer without accepting the token (another
// container at a replica's old address).
func unreachable(st pool.Stats) []int {
	var out []int
	for _, s := range st.Instances {
		if !s.Healthy && (s.Status == "unreachable" || s.Status == "unauthorized") {
			out = append(out, s.Index)
		}
	}
	return out
}

// follow asks the backend where the given replicas run now. The backend records a moved replica's
// new address in the state file (so later processes find it); this Env moves its pool there. It
// reports whether any moved.
func (e *Env) follow(ctx context.Context, indices []int) bool {
	f, ok := e.follower()
	if !ok {
		return false
	}
	e.followMu.Lock()
	defer e.followMu.Unlock()
	rec := e.record()
	updated := *rec
	updated.Instances = slices.Clone(rec.Instances)
	moved := false
	for _, idx := range indices {
		in, ok, err := f.Follow(ctx, &updated, idx)
		if err != nil {
			e.d.Log.Debug("follow replica", "env", rec.Name, "replica", idx, "err", err)
			continue
		}
		if !ok {
			continue
		}
		for i := range updated.Instances {
			if updated.Instances[i].Index == idx {
				updated.Instances[i] = in
				moved = true
			}
		}
	}
	if !moved {
		return false
	}
	e.recMu.Lock()
	e.rec = &updated
	e.recMu.Unlock()
	e.pool.SetEndpoints(f.Endpoints(&updated, updated.Instances))
	return true
}

// followUnreachable asks the backend where the replicas that do not answer run now (a restarted
// container can come back at a new address). It records the moved ones in the state file, moves
// this Env's pool to them, and reports whether any moved.
func (e *Env) followUnreachable(ctx context.Context) bool {
	idx := unreachable(e.pool.Stats(ctx))
	return len(idx) > 0 && e.follow(ctx, idx)
}
