package pool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/protocol"
)

// Kind of server behind the endpoints (pkg/protocol's, named here for the pool's users).
const (
	KindFunction = protocol.KindFunction // rfenv's shim: POST /call with a method envelope
	KindHTTP     = protocol.KindHTTP     // a user's own server: POST /METHOD with the keyword arguments
)

// DefaultTimeout bounds a call whose context has no deadline, so that no call waits forever.
const DefaultTimeout = protocol.DefaultCallTimeout

// MaxResponse is the largest reply accepted; the shim's own request limit is the same.
const MaxResponse = 64 << 20

// TimeoutHeader carries the caller's remaining time to the server, which enforces it.
const TimeoutHeader = protocol.TimeoutHeader

// BootHeader carries the boot id a session's call expects; a server with another one (it restarted)
// answers 410 without running the method.
const BootHeader = protocol.BootHeader

// Options configure a pool.
type Options struct {
	Name     string // the environment's name, for messages
	Token    string
	Kind     string // KindFunction (default) or KindHTTP
	Strategy string // Random (default), RoundRobin or LeastBusy
	// Counter, if set, numbers round-robin picks across processes.
	Counter func() (uint64, error)
	// DefaultTimeout applies to calls whose context has no deadline (default DefaultTimeout).
	DefaultTimeout time.Duration
	// Retries is how many more times a call that may have reached a replica is tried on another.
	// Calls that certainly never reached a replica are always failed over; these are opt-in because
	// a method with side effects could run twice.
	Retries int
	// MaxInflight is the budget: how many calls this pool keeps in flight on one replica. Calls beyond
	// it wait in a FIFO queue, honouring their deadlines (default DefaultMaxInflight).
	MaxInflight int
	// MaxConnsPerReplica bounds idle keep-alive connections kept per replica (default MaxInflight,
	// so that a steady load at the budget reuses its connections).
	MaxConnsPerReplica int
	Logger             *slog.Logger
}

// Pool calls the replicas of one environment. It is safe for use by many goroutines at once.
type Pool struct {
	opts Options
	// reps is the current replica list; SetEndpoints swaps it (readers take a snapshot with list).
	reps    atomic.Pointer[[]*replica]
	setMu   sync.Mutex
	chooser chooser
	health  *health
	authz   string
	disp    dispatcher

	closeOnce sync.Once
	closed    chan struct{}
}

// New returns a pool over endpoints.
func New(endpoints []Endpoint, opts Options) (*Pool, error) {
	if len(endpoints) == 0 {
		return nil, errs.New(errs.Infra, "environment %s has no replicas: run `rfenv up` to start some", opts.Name)
	}
	if opts.Strategy == "" {
		opts.Strategy = Random
	}
	if err := ValidateStrategy(opts.Strategy); err != nil {
		return nil, err
	}
	if opts.Kind == "" {
		opts.Kind = KindFunction
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = DefaultTimeout
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = DefaultMaxInflight
	}
	if opts.MaxConnsPerReplica <= 0 {
		opts.MaxConnsPerReplica = opts.MaxInflight
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pool{
		opts:    opts,
		chooser: newChooser(opts.Strategy, opts.Counter),
		health:  newHealth(),
		authz:   "Bearer " + opts.Token,
		closed:  make(chan struct{}),
	}
	reps := make([]*replica, 0, len(endpoints))
	for _, ep := range endpoints {
		reps = append(reps, newReplica(ep, opts.MaxConnsPerReplica, opts.MaxInflight))
	}
	p.reps.Store(&reps)
	return p, nil
}

// list is a snapshot of the current replicas.
func (p *Pool) list() []*replica { return *p.reps.Load() }

// SetEndpoints replaces the pool's replicas, e.g. with the pods a Kubernetes Deployment runs now.
// A replica whose endpoint stays (same Index, Host and Address) keeps its connections, counters and
// health; calls in flight on removed replicas finish on their open connections.
func (p *Pool) SetEndpoints(endpoints []Endpoint) {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	old := map[Endpoint]*replica{}
	for _, r := range p.list() {
		old[r.ep.identity()] = r
	}
	next := make([]*replica, 0, len(endpoints))
	added := false
	for _, ep := range endpoints {
		if r, ok := old[ep.identity()]; ok {
			delete(old, ep.identity())
			next = append(next, r)
			continue
		}
		next = append(next, newReplica(ep, p.opts.MaxConnsPerReplica, p.opts.MaxInflight))
		added = true
	}
	p.disp.mu.Lock()
	p.reps.Store(&next)
	p.dispatchLocked(true)
	p.disp.mu.Unlock()
	for _, r := range old {
		r.transport.CloseIdleConnections()
	}
	if added {
		p.health.notify()
	}
}

// Close stops health probes and closes idle connections. It does not touch the replicas themselves.
func (p *Pool) Close() {
	p.closeOnce.Do(func() {
		close(p.closed)
		for _, r := range p.list() {
			r.transport.CloseIdleConnections()
		}
	})
}

// Request is one method call.
type Request struct {
	Method string
	Args   []any // positional arguments (shim only)
	Kwargs any   // keyword arguments: a map, a struct, or json.RawMessage of an object; nil = none
}

type envelope struct {
	Method string `json:"method"`
	Args   []any  `json:"args"`
	Kwargs any    `json:"kwargs"`
}

// Encode builds the request body once, so retries and batches do not re-encode.
func (p *Pool) Encode(req Request) ([]byte, error) {
	kw := req.Kwargs
	if kw == nil {
		kw = struct{}{}
	}
	if p.opts.Kind == KindHTTP {
		if len(req.Args) > 0 {
			return nil, errs.New(errs.Usage, "%s is an http environment: its routes take keyword arguments only (use --arg k=v or an --args-json object)", p.opts.Name)
		}
		b, err := json.Marshal(kw)
		if err != nil {
			return nil, errs.New(errs.Usage, "arguments for %s are not JSON-serialisable: %v", req.Method, err)
		}
		return b, nil
	}
	args := req.Args
	if args == nil {
		args = []any{}
	}
	b, err := json.Marshal(envelope{Method: req.Method, Args: args, Kwargs: kw})
	if err != nil {
		return nil, errs.New(errs.Usage, "arguments for %s are not JSON-serialisable: %v", req.Method, err)
	}
	return b, nil
}

// Call runs one method on one replica and returns its JSON result.
func (p *Pool) Call(ctx context.Context, req Request) (json.RawMessage, error) {
	body, err := p.Encode(req)
	if err != nil {
		return nil, err
	}
	return p.CallEncoded(ctx, req.Method, body)
}

// CallEncoded is Call with a body from Encode.
func (p *Pool) CallEncoded(ctx context.Context, method string, body []byte) (json.RawMessage, error) {
	return p.call(ctx, method, body, nil, "")
}

// call runs one call: on the replica pin when set (a session's; it never moves), else on one the
// balancer picks among those with a free slot in their budget. bootID, when set, is sent for the
// server to check, so that a call of a session never runs on a restarted process.
func (p *Pool) call(ctx context.Context, method string, body []byte, pin *replica, bootID string) (json.RawMessage, error) {
	if method == "" {
		return nil, errs.New(errs.Usage, "no method given")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.opts.DefaultTimeout)
		defer cancel()
	}
	url := ""
	if p.opts.Kind == KindHTTP {
		url = "/" + strings.TrimPrefix(method, "/")
	}
	var tried []*replica
	var rejected error // the last 401: a replica that refused the token
	retriesLeft := p.opts.Retries
	accept := func(r *replica) bool { return !contains(tried, r) }
	if pin != nil {
		accept = func(r *replica) bool { return r == pin }
	}
	var backoff busyBackoff
	for {
		r, waited, err := p.acquire(ctx, accept, pin != nil)
		if err != nil {
			return nil, p.queueError(ctx, method, waited)
		}
		if r == nil {
			switch {
			case pin != nil:
				return nil, &PinnedError{Replica: pin.ep.Index, Why: "is out of rotation: " + orUnknown(pin.why())}
			case rejected != nil:
				return nil, rejected
			}
			return nil, p.noReplicaError(ctx, method, tried)
		}
		res, err := p.send(ctx, r, method, url, body, bootID)
		p.release(r)
		if err == nil {
			r.lastOK.Store(time.Now().UnixNano())
			p.growLimit(r)
			return res, nil
		}
		if ctxErr := p.contextError(ctx, method, err); ctxErr != nil {
			if errors.Is(ctxErr, errs.Deadline) {
				// The server did not even answer 504 in time: it may be hung. Check it aside.
				go p.suspect(r)
			}
			return nil, ctxErr
		}
		var ce *CallError
		isStatus := func(code int) bool { return errors.As(err, &ce) && ce.Status == code }
		switch {
		case errors.Is(err, errReplyTooLarge):
			// The method ran and answered: nothing is wrong with the replica, and another would
			// answer the same.
			return nil, fmt.Errorf("call %s on %s: %w", method, r.name(), err)
		case isStatus(http.StatusTooManyRequests):
			// The server is full (other processes' calls count too) and started nothing: wait for a
			// slot, on this replica or another, without marking it down.
			p.shrinkLimit(r)
			if err := backoff.wait(ctx); err != nil {
				return nil, p.queueError(ctx, method, 0)
			}
			continue
		case isDialError(err) && p.overloaded(r, err):
			// Connecting timed out while other calls to this replica are answered: its accept
			// queue is full. It is alive; the call waits for a connection to free up.
			p.shrinkLimit(r)
			if err := backoff.wait(ctx); err != nil {
				return nil, p.queueError(ctx, method, 0)
			}
			continue
		case pin != nil && isStatus(http.StatusGone):
			return nil, &PinnedError{Replica: r.ep.Index, Why: "was restarted: its server process is not the one the session started on", Restarted: true}
		case pin != nil && (isDialError(err) || isStatus(http.StatusServiceUnavailable) || isStatus(http.StatusUnauthorized)):
			// Nothing ran, and a session's call never moves to another replica.
			p.markDown(r, err)
			return nil, &PinnedError{Replica: r.ep.Index, Why: "is not answering: " + shortError(err)}
		case isDialError(err) || isStatus(http.StatusServiceUnavailable):
			// Never reached the method: take the replica out of rotation and fail over.
			p.markDown(r, err)
			tried = append(tried, r)
			continue
		case isStatus(http.StatusUnauthorized) && p.opts.Kind == KindFunction:
			// The shim refused the token before running anything. Usually the replica's address
			// now belongs to another container (the replica was removed and its IP reused): fail
			// over, and keep it out of rotation until it takes this pool's token again.
			rejected = err
			r.rejected.Store(true)
			p.markDown(r, err)
			tried = append(tried, r)
			continue
		case errors.As(err, &ce):
			if ce.Status == http.StatusGatewayTimeout {
				// A sync method may still be running past its deadline: let /health decide, aside,
				// so that the caller, already at its deadline, gets its answer at once.
				go p.checkBusy(r)
			}
			return nil, err
		case pin == nil && retriesLeft > 0:
			retriesLeft--
			p.markDown(r, err)
			tried = append(tried, r)
			continue
		default:
			p.markDown(r, err)
			lost := &ReplicaLostError{Method: method, Replica: r.ep.Index, Name: r.name(), Err: err}
			if pin != nil {
				return nil, &PinnedError{Replica: r.ep.Index, Why: "failed during the call (it may have run): " + shortError(err), Err: lost}
			}
			return nil, lost
		}
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "reason unknown"
	}
	return s
}

// overloaded says whether a failed dial to r is overload rather than death: the dial timed out (a
// dead container's address is silent too, but then nothing else to it is answered either) while
// other calls to r are in flight or were answered a moment ago.
func (p *Pool) overloaded(r *replica, err error) bool {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	p.disp.mu.Lock()
	busy := r.used > 0
	p.disp.mu.Unlock()
	return busy || time.Since(time.Unix(0, r.lastOK.Load())) < overloadWindow
}

// overloadWindow: a replica that answered a call this recently is alive.
const overloadWindow = 2 * time.Second

// busyBackoff spaces out retries of a call that a full server turned away, so that a burst does
// not spin against it while its slots are taken by other processes.
type busyBackoff struct{ d time.Duration }

func (b *busyBackoff) wait(ctx context.Context) error {
	b.d = min(max(2*b.d, time.Millisecond), 100*time.Millisecond)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// queueError is the error of a call whose context ended while it waited for a slot.
func (p *Pool) queueError(ctx context.Context, method string, waited time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errs.New(errs.Deadline, "call %s exceeded its deadline after waiting %s for a free slot: every replica of %s had %d calls in flight from this process (the budget); raise it with `up --max-inflight`, add replicas, or allow more time",
			method, waited.Round(time.Millisecond), p.opts.Name, p.opts.MaxInflight)
	}
	return errs.Wrap(errs.Interrupted, fmt.Errorf("call %s cancelled while waiting for a free slot: %w", method, context.Cause(ctx)))
}

func contains(rs []*replica, r *replica) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func (p *Pool) send(ctx context.Context, r *replica, method, path string, body []byte, bootID string) (json.RawMessage, error) {
	target := r.callURL
	if path != "" {
		target = r.base + path
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, errs.New(errs.Usage, "method name %q cannot form a request: %v", method, err)
	}
	hreq.Header = http.Header{
		"Content-Type":  {"application/json"},
		"Authorization": {p.authz},
	}
	if dl, ok := ctx.Deadline(); ok {
		hreq.Header[TimeoutHeader] = []string{strconv.FormatInt(serverBudget(time.Until(dl)).Milliseconds(), 10)}
	}
	if bootID != "" {
		hreq.Header[BootHeader] = []string{bootID}
	}
	r.inFlight.Add(1)
	r.requests.Add(1)
	resp, err := r.transport.RoundTrip(hreq)
	if err != nil {
		r.inFlight.Add(-1)
		r.failures.Add(1)
		return nil, err
	}
	data, err := readBody(resp.Body)
	resp.Body.Close()
	r.inFlight.Add(-1)
	if err != nil {
		r.failures.Add(1)
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		r.failures.Add(1)
		return nil, decodeCallError(resp.StatusCode, data, method, r.ep.Index)
	}
	if p.opts.Kind == KindHTTP {
		return json.RawMessage(data), nil
	}
	return extractResult(data)
}

// errReplyTooLarge: the server answered, but with more than MaxResponse bytes. The replica is fine.
var errReplyTooLarge = errs.New(errs.Infra, "the reply is larger than %d MiB, the limit; return less data per call", MaxResponse>>20)

// serverBudget leaves the server a little less time than the caller, so that the server's clear 504
// normally arrives before the caller's own deadline fires.
func serverBudget(remaining time.Duration) time.Duration {
	margin := min(remaining/20, 50*time.Millisecond)
	if d := remaining - margin; d > time.Millisecond {
		return d
	}
	return time.Millisecond
}

func readBody(rc io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(rc, MaxResponse+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxResponse {
		return nil, errReplyTooLarge
	}
	return data, nil
}

// extractResult takes "result" out of {"result": ...} without decoding the value itself.
func extractResult(data []byte) (json.RawMessage, error) {
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, errs.Wrap(errs.Infra, fmt.Errorf("malformed reply from server: %w", err))
	}
	if env.Result == nil {
		return json.RawMessage("null"), nil
	}
	return env.Result, nil
}

// contextError turns the caller's own deadline or cancellation into the matching error kind.
func (p *Pool) contextError(ctx context.Context, method string, err error) error {
	if ctx.Err() == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errs.New(errs.Deadline, "call %s exceeded its deadline", method)
	}
	return errs.Wrap(errs.Interrupted, fmt.Errorf("call %s cancelled: %w", method, context.Cause(ctx)))
}

func (p *Pool) noReplicaError(ctx context.Context, method string, tried []*replica) error {
	e := &NoReplicaError{Env: p.opts.Name, Method: method}
	for _, r := range p.list() {
		if why := r.why(); !r.available() && why != "" {
			e.Reasons = append(e.Reasons, fmt.Sprintf("replica %d: %s", r.ep.Index, why))
			e.NoRoute = e.NoRoute || strings.Contains(why, "network is unreachable") || strings.Contains(why, "no route to host")
		}
	}
	return e
}
