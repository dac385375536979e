package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/pool"
)

// sessionRecorder stands in for an environment: it records the steps each session saw, in order,
// and how many calls of one session ever ran at once.
type sessionRecorder struct {
	mu       sync.Mutex
	steps    map[string][]int
	running  map[string]int
	overlap  atomic.Bool
	inFlight atomic.Int64
	peak     atomic.Int64
	plain    atomic.Int64
	// The first session call waits (up to a minute) for a call of another session to start beside
	// it, proving that sessions run concurrently; met says whether one did.
	first, second sync.Once
	together      chan struct{}
	met           atomic.Bool
}

func (r *sessionRecorder) Encode(req pool.Request) ([]byte, error) { return json.Marshal(req.Kwargs) }

func (r *sessionRecorder) CallEncoded(ctx context.Context, method string, body []byte) (json.RawMessage, error) {
	r.plain.Add(1)
	return json.RawMessage(`null`), nil
}

func (r *sessionRecorder) CallSession(ctx context.Context, key, method string, body []byte) (json.RawMessage, error) {
	n := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	for p := r.peak.Load(); n > p && !r.peak.CompareAndSwap(p, n); p = r.peak.Load() {
	}
	var kw struct {
		Step int `json:"step"`
	}
	json.Unmarshal(body, &kw)
	r.mu.Lock()
	r.running[key]++
	if r.running[key] > 1 {
		r.overlap.Store(true)
	}
	r.steps[key] = append(r.steps[key], kw.Step)
	r.mu.Unlock()
	isFirst := false
	r.first.Do(func() { isFirst = true })
	if isFirst {
		select {
		case <-r.together:
			r.met.Store(true)
		case <-time.After(time.Minute):
		}
	} else {
		r.second.Do(func() { close(r.together) })
	}
	runtime.Gosched()
	r.mu.Lock()
	r.running[key]--
	r.mu.Unlock()
	return json.RawMessage(fmt.Sprint(kw.Step)), nil
}

// TestSessionLinesKeepTheirOrder: lines of one session run one at a time in input order, while
// sessions run beside each other and lines without a session are unaffected; "session" is not
// passed to the method.
func TestSessionLinesKeepTheirOrder(t *testing.T) {
	const sessions, steps = 40, 10
	var in strings.Builder
	// Session-major order (all of s0's steps, then s1's, ...), the worst case for a naive
	// scheduler that would hold a worker per waiting line.
	for s := 0; s < sessions; s++ {
		for k := 0; k < steps; k++ {
			fmt.Fprintf(&in, "{\"session\": \"s%d\", \"step\": %d}\n", s, k)
		}
		fmt.Fprintf(&in, "{\"x\": %d}\n", s)
	}
	rec := &sessionRecorder{steps: map[string][]int{}, running: map[string]int{}, together: make(chan struct{})}
	var out bytes.Buffer
	sum, err := Run(context.Background(), rec, strings.NewReader(in.String()), &out, Options{Method: "step", Concurrency: 16})
	if err != nil || sum.Failed != 0 || sum.Total != sessions*(steps+1) {
		t.Fatalf("batch: %+v %v\n%s", sum, err, out.String())
	}
	if rec.overlap.Load() {
		t.Error("two calls of one session ran at once")
	}
	for s := 0; s < sessions; s++ {
		got := rec.steps[fmt.Sprintf("s%d", s)]
		for k := 0; k < steps; k++ {
			if len(got) != steps || got[k] != k {
				t.Fatalf("session s%d saw steps %v, want 0..%d in order", s, got, steps-1)
			}
		}
	}
	if rec.plain.Load() != sessions {
		t.Errorf("%d sessionless calls, want %d", rec.plain.Load(), sessions)
	}
	if !rec.met.Load() {
		t.Errorf("no other session's call ran while the first one was in flight (peak %d)", rec.peak.Load())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, l := range lines {
		var line Line
		json.Unmarshal([]byte(l), &line)
		if line.Index != i {
			t.Fatalf("output line %d has index %d", i, line.Index)
		}
	}
}
