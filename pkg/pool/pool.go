package pool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
)

// Kind of server behind the endpoints.
const (
	KindFunction = "function" // rfenv's shim: POST /call with a method envelope
	KindHTTP     = "http"     // a user's own server: POST /METHOD with the keyword arguments
)

// DefaultTimeout bounds a call whose context has no deadline, so that no call waits forever.
const DefaultTimeout = 5 * time.Minute

// MaxResponse is the largest reply accepted; the shim's own request limit is the same.
const MaxResponse = 64 << 20

// TimeoutHeader carries the caller's remaining time to the server, which enforces it.
const TimeoutHeader = "X-Rfenv-Timeout-Ms"

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
	// MaxConnsPerReplica bounds idle keep-alive connections kept per replica (default 256).
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
	if opts.MaxConnsPerReplica <= 0 {
		opts.MaxConnsPerReplica = 256
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
		reps = append(reps, newReplica(ep, opts.MaxConnsPerReplica))
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
		next = append(next, newReplica(ep, p.opts.MaxConnsPerReplica))
		added = true
	}
	p.reps.Store(&next)
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
	for {
		r := p.pick(tried)
		if r == nil {
			if rejected != nil {
				return nil, rejected
			}
			return nil, p.noReplicaError(ctx, method, tried)
		}
		tried = append(tried, r)
		res, err := p.send(ctx, r, method, url, body)
		if err == nil {
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
		switch {
		case errors.Is(err, errReplyTooLarge):
			// The method ran and answered: nothing is wrong with the replica, and another would
			// answer the same.
			return nil, fmt.Errorf("call %s on %s: %w", method, r.name(), err)
		case isDialError(err) || (errors.As(err, &ce) && ce.Status == http.StatusServiceUnavailable):
			// Never reached the method: take the replica out of rotation and fail over.
			p.markDown(r, err)
			continue
		case errors.As(err, &ce) && ce.Status == http.StatusUnauthorized && p.opts.Kind == KindFunction:
			// The shim refused the token before running anything. Usually the replica's address
			// now belongs to another container (the replica was removed and its IP reused): fail
			// over, and keep it out of rotation until it takes this pool's token again.
			rejected = err
			r.rejected.Store(true)
			p.markDown(r, err)
			continue
		case errors.As(err, &ce):
			if ce.Status == http.StatusGatewayTimeout {
				// A sync method may still be running past its deadline: let /health decide, aside,
				// so that the caller, already at its deadline, gets its answer at once.
				go p.checkBusy(r)
			}
			return nil, err
		case retriesLeft > 0:
			retriesLeft--
			p.markDown(r, err)
			continue
		default:
			p.markDown(r, err)
			return nil, &ReplicaLostError{Method: method, Replica: r.ep.Index, Name: r.name(), Err: err}
		}
	}
}

// pick chooses an available replica not yet tried for this call.
func (p *Pool) pick(tried []*replica) *replica {
	var buf [16]*replica
	cands := buf[:0]
	for _, r := range p.list() {
		if r.available() && !contains(tried, r) {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return p.chooser.choose(cands)
}

func contains(rs []*replica, r *replica) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func (p *Pool) send(ctx context.Context, r *replica, method, path string, body []byte) (json.RawMessage, error) {
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
	var reasons []string
	for _, r := range p.list() {
		if why := r.why(); !r.available() && why != "" {
			reasons = append(reasons, fmt.Sprintf("replica %d: %s", r.ep.Index, why))
		}
	}
	detail := ""
	if len(reasons) > 0 {
		detail = " (" + strings.Join(reasons, "; ") + ")"
	}
	return errs.New(errs.Infra, "no healthy replica of %s can take %s%s; check `rfenv stats %s`, and run `rfenv up` on it to replace dead replicas", p.opts.Name, method, detail, p.opts.Name)
}
