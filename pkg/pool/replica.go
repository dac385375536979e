// Package pool calls an environment's replicas: it balances calls over them, tracks their health,
// fails over when a call certainly never reached a replica, and enforces deadlines on both ends.
package pool

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ContextDialer opens connections to a replica's address (directly, or through an SSH connection).
type ContextDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Endpoint is one replica as the pool sees it.
type Endpoint struct {
	Index   int
	Host    string        // the host spec it runs on, for stats
	Address string        // host:port of its server
	Dialer  ContextDialer // nil means a direct TCP connection
}

// DirectDialTimeout bounds connecting straight to a replica's address (a container on the local
// daemon's network, where a live server accepts in well under a millisecond). The address of a
// container that was stopped or removed does not refuse: nothing answers at all, so without a short
// bound every call that tried a dead replica first would stall for seconds before failing over.
const DirectDialTimeout = time.Second

// identity is what SetEndpoints compares: the endpoint without its dialer.
func (e Endpoint) identity() Endpoint {
	return Endpoint{Index: e.Index, Host: e.Host, Address: e.Address}
}

// replica is an endpoint plus its connections and health as this process sees them.
type replica struct {
	ep        Endpoint
	base      string // "http://addr"
	callURL   string
	transport *http.Transport

	inFlight atomic.Int64
	healthy  atomic.Bool
	// busy: the server reported calls running past their deadline (a sync method cannot be cancelled),
	// so it gets no calls until /health says ok again.
	busy    atomic.Bool
	probing atomic.Bool
	// rejected: the server at the replica's address refused the token (its IP may now be another
	// container's), so only an authenticated probe may bring it back.
	rejected atomic.Bool
	reason   atomic.Pointer[string] // why it is out of rotation

	requests atomic.Int64 // calls this process sent it
	failures atomic.Int64
	// lastOK is when a call to it last got an answer (unix nanoseconds): a dial that times out while
	// calls are answered is overload, not death.
	lastOK atomic.Int64

	// used and limit are this process's calls in flight on it and its budget (the pool's
	// MaxInflight, lowered while the server says it is full); both guarded by the pool's dispatcher.
	used, limit int
	shrunk      atomic.Bool // limit < MaxInflight
	// bootID is the server process's id from its last authenticated /health (shim v2): a restarted
	// or replaced replica has another one.
	bootID atomic.Pointer[string]
}

// dialError marks a failure to connect: the request certainly never reached the server.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func newReplica(ep Endpoint, maxConns, budget int) *replica {
	d := ep.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: DirectDialTimeout, KeepAlive: 30 * time.Second}
	}
	addr := ep.Address
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, &dialError{err}
			}
			return c, nil
		},
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		// Large enough for a 64 MiB result in few syscalls without holding much memory per idle conn.
		ReadBufferSize:  64 << 10,
		WriteBufferSize: 64 << 10,
	}
	r := &replica{ep: ep, base: "http://" + addr, callURL: "http://" + addr + "/call", transport: tr, limit: budget}
	r.healthy.Store(true)
	return r
}

func (r *replica) available() bool { return r.healthy.Load() && !r.busy.Load() }

func (r *replica) name() string {
	return "replica " + strconv.Itoa(r.ep.Index) + " (" + r.ep.Address + " on " + r.ep.Host + ")"
}

func (r *replica) setReason(s string) { r.reason.Store(&s) }

func (r *replica) why() string {
	if p := r.reason.Load(); p != nil {
		return *p
	}
	return ""
}

// isDialError says the error happened before any byte of the request left this process.
func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}

// health tracking shared by a pool's replicas.
type health struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever a replica rejoins
}

func newHealth() *health { return &health{changed: make(chan struct{})} }

func (h *health) notify() {
	h.mu.Lock()
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

func (h *health) wait() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}
