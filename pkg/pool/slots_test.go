package pool

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
)

// gatedShim holds every call until the test opens the gate, recording how many run at once and the
// order they arrived in (by the X-Test-Seq header).
type gatedShim struct {
	gate    chan struct{}
	mu      sync.Mutex
	order   []int
	running atomic.Int64
	peak    atomic.Int64
	arrived chan struct{}
}

func newGatedShim() *gatedShim {
	return &gatedShim{gate: make(chan struct{}), arrived: make(chan struct{}, 1024)}
}

func (g *gatedShim) handle(w http.ResponseWriter, r *http.Request) {
	n := g.running.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	var env struct {
		Kwargs struct {
			Seq int `json:"seq"`
		} `json:"kwargs"`
	}
	json.NewDecoder(r.Body).Decode(&env)
	seq := env.Kwargs.Seq
	g.mu.Lock()
	g.order = append(g.order, seq)
	g.mu.Unlock()
	g.arrived <- struct{}{}
	<-g.gate
	g.running.Add(-1)
	w.Write([]byte(`{"result":1}`))
}

// TestBudgetQueuesFIFO: with a budget of B, ten calls at once never put more than B on the replica,
// the rest wait in the pool's queue, and slots go to them first come first served (with B = 1 the
// server sees them in exactly the order they were made).
func TestBudgetQueuesFIFO(t *testing.T) {
	for _, budget := range []int{1, 2} {
		t.Run(strconv.Itoa(budget), func(t *testing.T) {
			g := newGatedShim()
			srv, calls := fakeShim(t, "a", g.handle)
			p, err := New([]Endpoint{{Index: 0, Address: addr(srv)}}, Options{MaxInflight: budget})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			const n = 10
			var wg sync.WaitGroup
			errsCh := make(chan error, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					_, err := p.Call(context.Background(), Request{Method: "m", Kwargs: map[string]int{"seq": i}})
					errsCh <- err
				}(i)
				// Start the next call only once this one is on the server or in the queue, so that
				// the order of arrival is defined.
				want := i + 1
				waitFor(t, func() bool { return int(calls.Load())+p.queued() == want })
			}
			if q := p.queued(); q != n-budget {
				t.Fatalf("%d calls queued, want %d (budget %d)", q, n-budget, budget)
			}
			close(g.gate)
			wg.Wait()
			close(errsCh)
			for err := range errsCh {
				if err != nil {
					t.Error(err)
				}
			}
			if peak := g.peak.Load(); peak != int64(budget) {
				t.Errorf("%d calls ran on the replica at once, want the budget, %d", peak, budget)
			}
			if budget == 1 {
				for i, seq := range g.order {
					if seq != i {
						t.Fatalf("calls reached the server in order %v, want 0..%d", g.order, n-1)
					}
				}
			}
		})
	}
}

// TestQueuedPastDeadlineIsDeadline: a call still waiting for a slot at its deadline fails as a
// deadline (exit 124), never as infrastructure, and never reaches the server.
func TestQueuedPastDeadlineIsDeadline(t *testing.T) {
	g := newGatedShim()
	srv, calls := fakeShim(t, "a", g.handle)
	p, _ := New([]Endpoint{{Index: 0, Address: addr(srv)}}, Options{MaxInflight: 1})
	defer p.Close()
	go p.Call(context.Background(), Request{Method: "hold"})
	waitFor(t, func() bool { return calls.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Call(ctx, Request{Method: "m"})
	if !errors.Is(err, errs.Deadline) || errors.Is(err, errs.Infra) {
		t.Fatalf("queued call past its deadline: %v, want a deadline error", err)
	}
	if calls.Load() != 1 {
		t.Errorf("the queued call reached the server")
	}
	close(g.gate)
}

// TestBusyIsRetriedNotDeath: a server that answers 429 (it could not start the call) keeps its place
// in rotation, and the call runs once it has room.
func TestBusyIsRetriedNotDeath(t *testing.T) {
	var busyLeft atomic.Int64
	busyLeft.Store(3)
	srv, calls := fakeShim(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if busyLeft.Add(-1) >= 0 {
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":{"type":"Busy","message":"full"}}`))
			return
		}
		w.Write([]byte(`{"result":"ran"}`))
	})
	p, _ := New([]Endpoint{{Index: 0, Address: addr(srv)}}, Options{})
	defer p.Close()
	res, err := p.Call(context.Background(), Request{Method: "m"})
	if err != nil || string(res) != `"ran"` {
		t.Fatalf("call after 429s: %s %v", res, err)
	}
	if calls.Load() != 4 {
		t.Errorf("%d requests, want 3 turned away + 1 run", calls.Load())
	}
	if st := p.list()[0]; !st.available() {
		t.Errorf("a busy server was taken out of rotation: %s", st.why())
	}
}

// TestPinnedCallNeverMoves: a call pinned to a replica whose server restarted (410 for the boot id)
// or stopped answering fails with PinnedError; the other replica never sees it.
func TestPinnedCallNeverMoves(t *testing.T) {
	restarted, rcalls := fakeShim(t, "r", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(BootHeader) != "" && r.Header.Get(BootHeader) != "new" {
			w.WriteHeader(http.StatusGone)
			w.Write([]byte(`{"error":{"type":"BootMismatch","message":"restarted"}}`))
			return
		}
		w.Write([]byte(`{"result":"r"}`))
	})
	other, ocalls := fakeShim(t, "o", nil)
	p, _ := New([]Endpoint{{Index: 0, Address: addr(restarted)}, {Index: 1, Address: addr(other)}}, Options{})
	defer p.Close()
	body, _ := p.Encode(Request{Method: "step"})
	_, err := p.CallPinned(context.Background(), 0, "old", "step", body)
	var pe *PinnedError
	if !errors.As(err, &pe) || !pe.Restarted || pe.Replica != 0 {
		t.Fatalf("pinned call on a restarted replica: %v", err)
	}
	if res, err := p.CallPinned(context.Background(), 0, "new", "step", body); err != nil || string(res) != `"r"` {
		t.Fatalf("pinned call with the right boot id: %s %v", res, err)
	}
	other.Close()
	_, err = p.CallPinned(context.Background(), 1, "", "step", body)
	if !errors.As(err, &pe) || pe.Replica != 1 {
		t.Fatalf("pinned call on a dead replica: %v", err)
	}
	if _, err := p.CallPinned(context.Background(), 7, "", "step", body); !errors.As(err, &pe) {
		t.Fatalf("pinned call on a replica that is not in the pool: %v", err)
	}
	if ocalls.Load() != 0 || rcalls.Load() != 2 {
		t.Errorf("calls: restarted %d, other %d; pinned calls must stay on their replica", rcalls.Load(), ocalls.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	end := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(end) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}
