package state

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestSessionTableLifecycle(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tab, err := s.Sessions("env")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := tab.Get("k1"); ok || err != nil {
		t.Fatalf("Get of a key never opened: ok=%v err=%v", ok, err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	placed := 0
	place := func(open []Session) (Session, error) {
		placed++
		return Session{Replica: len(open) % 3, BootID: "boot", Created: now, LastUsed: now}, nil
	}
	for _, k := range []string{"k1", "k2", "a key/with ../odd chars"} {
		if _, err := tab.Open(ctx, k, place); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := tab.Open(ctx, "k1", place)
	if !errors.Is(err, ErrSessionExists) || sess.Key != "k1" || sess.Replica != 0 {
		t.Fatalf("reopen k1: %+v %v, want the existing session and ErrSessionExists", sess, err)
	}
	if placed != 3 {
		t.Errorf("place ran %d times, want 3 (not for a key already open)", placed)
	}
	got, _, _ := tab.Get("k2")
	if got.Replica != 1 || got.BootID != "boot" || !got.Created.Equal(now) {
		t.Errorf("k2 = %+v", got)
	}
	later := now.Add(time.Minute)
	if ok, err := tab.Touch(ctx, "k2", 3, later); !ok || err != nil {
		t.Fatalf("Touch: %v %v", ok, err)
	}
	got, _, _ = tab.Get("k2")
	if got.Calls != 3 || !got.LastUsed.Equal(later) {
		t.Errorf("after Touch: %+v", got)
	}
	list, _ := tab.List()
	if len(list) != 3 {
		t.Errorf("List: %d sessions, want 3", len(list))
	}
	if err := tab.Remove("k2"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := tab.Touch(ctx, "k2", 1, later); ok {
		t.Error("Touch of a removed session reported it open")
	}
	if _, ok, _ := tab.Get("k2"); ok {
		t.Error("k2 still open after Remove")
	}
	if err := tab.Drop(); err != nil {
		t.Fatal(err)
	}
	if list, _ := tab.List(); len(list) != 0 {
		t.Errorf("after Drop: %d sessions", len(list))
	}
	if err := ValidateSessionKey(""); err == nil {
		t.Error("empty key accepted")
	}
}

// TestSessionTableConcurrentOpen: many goroutines opening one key on first use agree on one
// placement, and concurrent opens of distinct keys each see the others (placement is serialised).
func TestSessionTableConcurrentOpen(t *testing.T) {
	s, _ := Open(t.TempDir())
	tab, _ := s.Sessions("env")
	ctx := context.Background()
	var mu sync.Mutex
	replicas := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sess, err := tab.Open(ctx, "shared", func(open []Session) (Session, error) {
				return Session{Replica: len(open)}, nil
			})
			if err != nil && !errors.Is(err, ErrSessionExists) {
				t.Error(err)
				return
			}
			mu.Lock()
			replicas[sess.Replica]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(replicas) != 1 {
		t.Errorf("one key placed on %d replicas: %v", len(replicas), replicas)
	}
	counts := map[int]int{}
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := tab.Open(ctx, string(rune('a'+i%26))+string(rune('0'+i/26)), func(open []Session) (Session, error) {
				per := map[int]int{}
				for _, o := range open {
					per[o.Replica]++
				}
				best := 0
				for r := 1; r < 3; r++ {
					if per[r] < per[best] {
						best = r
					}
				}
				return Session{Replica: best}, nil
			})
			if err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	list, _ := tab.List()
	for _, sess := range list {
		counts[sess.Replica]++
	}
	// 31 sessions placed fewest-first, one at a time: 11, 10, 10 in some order.
	for r, n := range counts {
		if n < 10 || n > 11 {
			t.Errorf("replica %d holds %d sessions: placement raced (%v)", r, n, counts)
		}
	}
}
