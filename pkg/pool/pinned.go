package pool

import (
	"context"
	"encoding/json"
)

// CallPinned runs a call on the replica with index and nowhere else: a session's call, which must
// reach the process holding its episode. bootID, when set, is the server process the session
// started on; a server with another one (restarted or replaced) refuses the call before running it.
// A call that cannot run there fails with a *PinnedError.
func (p *Pool) CallPinned(ctx context.Context, index int, bootID, method string, body []byte) (json.RawMessage, error) {
	r := p.replica(index)
	if r == nil {
		return nil, &PinnedError{Replica: index, Why: "is no longer part of the environment (it was scaled down or removed)"}
	}
	return p.call(ctx, method, body, r, bootID)
}

// replica returns the replica with index, or nil.
func (p *Pool) replica(index int) *replica {
	for _, r := range p.list() {
		if r.ep.Index == index {
			return r
		}
	}
	return nil
}

// Boot asks replica index for its server's boot id (authenticated /health, shim protocol 2). It is
// "" for servers that do not report one (a user's http server, an older shim).
func (p *Pool) Boot(ctx context.Context, index int) (string, error) {
	r := p.replica(index)
	if r == nil {
		return "", &PinnedError{Replica: index, Why: "is no longer part of the environment"}
	}
	h, err := p.probeHealth(ctx, r)
	if err != nil {
		return "", err
	}
	return h.BootID, nil
}

// Placement is what choosing a replica for a new session needs to know of one.
type Placement struct {
	Index    int
	InFlight int64 // this process's calls in flight on it
}

// Placeable lists the replicas in rotation, where a new session may go.
func (p *Pool) Placeable() []Placement {
	var out []Placement
	for _, r := range p.list() {
		if r.available() {
			out = append(out, Placement{Index: r.ep.Index, InFlight: r.inFlight.Load()})
		}
	}
	return out
}
