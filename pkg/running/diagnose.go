package running

import (
	"context"
	"errors"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/pool"
)

// Explain adds what the backend knows (for Docker: what Docker knows) to a call error whose replica was lost mid-call (the connection
// broke before the answer): its container was killed for running out of memory, exited, or was
// removed. Other errors, and errors Docker cannot explain, are returned unchanged. It costs one
// container inspection, made only after such a failure.
func (e *Env) Explain(ctx context.Context, err error) error {
	var lost *pool.ReplicaLostError
	if !errors.As(err, &lost) {
		return err
	}
	if why := e.problem(ctx, lost.Replica, true); why != "" {
		return errs.Explained(err, why)
	}
	return err
}

// statsWithContainers is Stats plus, for each replica that does not answer, what Docker says about
// its container.
func (e *Env) statsWithContainers(ctx context.Context) pool.Stats {
	st := e.pool.Stats(ctx)
	// A replica that does not answer may have come back at a new address: follow it, and look again.
	if idx := unreachable(st); len(idx) > 0 && e.follow(ctx, idx) {
		st = e.pool.Stats(ctx)
	}
	for i := range st.Instances {
		s := &st.Instances[i]
		if s.Healthy || (s.Status != "unreachable" && s.Status != "unauthorized") {
			continue
		}
		if why := e.problem(ctx, s.Index, false); why != "" {
			s.Error = why + " (" + s.Error + ")"
		}
	}
	return st
}

// problem asks the environment's backend what is wrong with a replica.
func (e *Env) problem(ctx context.Context, replica int, afterCall bool) string {
	if e.d.Backend == nil {
		return ""
	}
	return e.d.Backend.Explain(ctx, e.record(), replica, afterCall)
}
