package rfenv_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestE2EBurstFarAboveBudget: 2,000 calls at once against 2 replicas with a budget of 16 calls each
// all succeed: the rest wait in the pool's queue instead of dialling, and no replica ever runs more
// than the budget at once (each counts its own peak).
func TestE2EBurstFarAboveBudget(t *testing.T) {
	const budget, n = 16, 2000
	_, env := upEpisodic(t, e2e.Name("lib-burst"), rfenv.UpOptions{Replicas: 2, MaxInflight: budget})
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	var first error
	sawQueue := false
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			defer cancel()
			if _, err := env.Call(cctx, "hold", map[string]float64{"seconds": 0.1}); err != nil {
				mu.Lock()
				failed++
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	e2e.Eventually(t, time.Minute, "calls to wait in the queue", func() bool {
		if env.Stats(ctx).Queued > 0 {
			sawQueue = true
		}
		return sawQueue
	})
	wg.Wait()
	if failed > 0 {
		t.Fatalf("%d of %d calls failed; first: %v", failed, n, first)
	}
	for _, in := range env.Record().Instances {
		body, _ := env.Pool().Encode(pool.Request{Method: "peak"})
		res, err := env.Pool().CallPinned(ctx, in.Index, "", "peak", body)
		if err != nil {
			t.Fatal(err)
		}
		var peak int
		json.Unmarshal(res, &peak)
		if peak > budget || peak < 1 {
			t.Errorf("replica %d ran %d calls at once; the budget is %d", in.Index, peak, budget)
		}
	}
}

// TestE2EQueuedPastDeadline: with a budget of one call, a call still waiting for the slot at its
// deadline fails as a deadline (never as infrastructure) and never runs.
func TestE2EQueuedPastDeadline(t *testing.T) {
	_, env := upEpisodic(t, e2e.Name("lib-qdl"), rfenv.UpOptions{Replicas: 1, MaxInflight: 1})
	ctx := context.Background()
	holding := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		_, err := env.Call(cctx, "hold", map[string]float64{"seconds": 30})
		holding <- err
	}()
	e2e.Eventually(t, time.Minute, "the first call to hold the only slot", func() bool {
		st := env.Stats(ctx)
		return len(st.Instances) == 1 && st.Instances[0].InFlight == 1
	})
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err := env.Call(cctx, "peak", nil)
	cancel()
	if !errors.Is(err, errs.Deadline) || errors.Is(err, errs.Infra) {
		t.Fatalf("a call queued past its deadline: %v, want a deadline", err)
	}
	st := env.Stats(ctx)
	if st.Instances[0].Requests != 0 {
		t.Errorf("the server counted %d finished calls; the queued one must never have reached it", st.Instances[0].Requests)
	}
}

// TestE2EOverdueRestart: a sync method that never returns is cut off by the overdue restart: the
// replica restarts itself once the call is past its deadline by the limit, serves again with a new
// server process, and stats show the event.
func TestE2EOverdueRestart(t *testing.T) {
	_, env, _ := upActor(t, e2e.Name("lib-overdue"), 1, rfenv.WithUpOptions(rfenv.UpOptions{
		Name: e2e.Name("lib-overdue"), Replicas: 1, OverdueRestart: time.Second, ReadyTimeout: 10 * time.Minute,
	}))
	ctx := context.Background()
	before, err := env.Pool().Boot(ctx, 0)
	if err != nil || before == "" {
		t.Fatalf("boot id before: %q %v", before, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = env.Call(cctx, "block_sync", map[string]string{"gate": e2e.Name("never")})
	cancel()
	if !errors.Is(err, errs.Deadline) {
		t.Fatalf("the stuck call: %v, want its deadline", err)
	}
	var st pool.InstanceStats
	e2e.Eventually(t, 2*time.Minute, "the replica to restart itself and serve again", func() bool {
		s := env.Stats(ctx)
		if len(s.Instances) != 1 {
			return false
		}
		st = s.Instances[0]
		return st.Healthy && st.OverdueRestarts == 1
	})
	if st.LastRestart == "" {
		t.Error("stats do not say which call caused the restart")
	}
	after, err := env.Pool().Boot(ctx, 0)
	if err != nil || after == before {
		t.Errorf("boot id after the restart: %q (before %q): %v", after, before, err)
	}
	// The pool may have tried the replica while it restarted and be probing it with backoff: the
	// recovery is that calls succeed again, however soon.
	var callErr error
	e2e.Eventually(t, 2*time.Minute, "calls to succeed after the restart", func() bool {
		var r string
		callErr = env.CallInto(ctx, "replica", nil, &r)
		return callErr == nil
	})
	logs := docker(t, "logs", env.Record().Instances[0].ContainerID)
	if !strings.Contains(logs, "restarting") || !strings.Contains(logs, "block_sync") {
		t.Errorf("the replica's log does not show the restart:\n%s", logs)
	}
}
