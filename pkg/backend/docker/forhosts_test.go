package docker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestForHostsBound: work goes on at most limit hosts at once, a host's items run together, and the
// first error stops hosts that have not started.
func TestForHostsBound(t *testing.T) {
	const hosts, perHost, limit = 20, 3, 4
	var items []int
	for i := range hosts * perHost {
		items = append(items, i)
	}
	hostOf := func(i int) string { return fmt.Sprint("h", i%hosts) } // a host's items are not adjacent

	var mu sync.Mutex
	active := map[string]int{} // host → items running
	maxHosts := 0
	arrived := map[string]chan struct{}{}
	counts := map[string]int{}
	for i := range hosts {
		arrived[fmt.Sprint("h", i)] = make(chan struct{})
	}
	err := forHosts(context.Background(), limit, items, hostOf, func(ctx context.Context, i int) error {
		h := hostOf(i)
		mu.Lock()
		active[h]++
		maxHosts = max(maxHosts, len(active))
		counts[h]++
		if counts[h] == perHost {
			close(arrived[h])
		}
		mu.Unlock()
		// Every item of the host must be running at once: wait for the others.
		select {
		case <-arrived[h]:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("the items of %s did not run together", h)
		}
		mu.Lock()
		if active[h]--; active[h] == 0 {
			delete(active, h)
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if maxHosts > limit || maxHosts < 2 {
		t.Errorf("at most %d hosts worked on at once, want between 2 and %d", maxHosts, limit)
	}

	// An error cancels the others and stops hosts still waiting for their turn.
	boom := errors.New("boom")
	var ran atomic.Int32
	err = forHosts(context.Background(), 1, items, hostOf, func(ctx context.Context, i int) error {
		ran.Add(1)
		if hostOf(i) == "h0" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if n := ran.Load(); n != perHost {
		t.Errorf("%d items ran after the first host failed, want only that host's %d", n, perHost)
	}
}
