package rfenv_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

func upEpisodic(t *testing.T, name string, o rfenv.UpOptions) (*rfenv.Client, *rfenv.Env) {
	t.Helper()
	c, err := rfenv.New(rfenv.WithStateDir(e2e.StateDir(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	o.Name = name
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 10 * time.Minute
	}
	env, err := c.Up(context.Background(), e2e.Image(t, "episodic"), rfenv.WithUpOptions(o))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Release)
	return c, env
}

type stepResult struct {
	Steps   int    `json:"steps"`
	Replica string `json:"replica"`
}

// episode runs reset and n steps on session s and returns the replica that answered them.
func episode(ctx context.Context, s *rfenv.Session, n int) (string, error) {
	var r struct {
		EpisodeID string `json:"episode_id"`
		Replica   string `json:"replica"`
	}
	if err := s.CallInto(ctx, "reset", nil, &r); err != nil {
		return "", err
	}
	for k := 1; k <= n; k++ {
		var st stepResult
		if err := s.CallInto(ctx, "step", map[string]any{"episode_id": r.EpisodeID, "action": k}, &st); err != nil {
			return "", fmt.Errorf("step %d: %w", k, err)
		}
		if st.Steps != k || st.Replica != r.Replica {
			return "", fmt.Errorf("step %d answered %+v by replica %s, the episode is on %s", k, st, st.Replica, r.Replica)
		}
	}
	return r.Replica, nil
}

// TestE2ESessionsManyEpisodes: 300 sessions at once on 3 replicas, each a reset then 10 steps:
// every step finds its episode, and the sessions spread evenly (placement by fewest sessions).
func TestE2ESessionsManyEpisodes(t *testing.T) {
	_, env := upEpisodic(t, e2e.Name("lib-episodes"), rfenv.UpOptions{Replicas: 3})
	ctx := context.Background()
	const n = 300
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := env.OpenSession(ctx)
			if err != nil {
				errc <- err
				return
			}
			defer s.Close(ctx)
			if _, err := episode(ctx, s, 10); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// TestE2ESessionLost: with one replica killed (and kept dead), exactly the sessions on it fail with
// SessionLost and never move; the others finish; new sessions avoid it; once up replaces it, new
// sessions land there again.
func TestE2ESessionLost(t *testing.T) {
	name := e2e.Name("lib-lost")
	c, env := upEpisodic(t, name, rfenv.UpOptions{Replicas: 3})
	ctx := context.Background()
	type open struct {
		s       *rfenv.Session
		episode string
		replica string
	}
	var sessions []open
	for i := 0; i < 30; i++ {
		s, err := env.OpenSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			EpisodeID string `json:"episode_id"`
			Replica   string `json:"replica"`
		}
		if err := s.CallInto(ctx, "reset", nil, &r); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, open{s, r.EpisodeID, r.Replica})
	}
	victim := env.Record().Instances[1]
	docker(t, "update", "--restart=no", victim.ContainerID) // stays dead: no restart policy
	docker(t, "kill", victim.ContainerID)
	e2e.Eventually(t, time.Minute, "the killed container to stop", func() bool {
		return docker(t, "inspect", "-f", "{{.State.Running}}", victim.ContainerID) == "false"
	})
	lost, kept := 0, 0
	for _, o := range sessions {
		var st stepResult
		err := o.s.CallInto(ctx, "step", map[string]any{"episode_id": o.episode}, &st)
		switch {
		case o.replica == strconv.Itoa(victim.Index):
			lost++
			if !errors.Is(err, errs.SessionLost) {
				t.Errorf("session on the killed replica: %v, want SessionLost", err)
			} else if !strings.Contains(err.Error(), "open a new session") || !strings.Contains(err.Error(), "replica "+strconv.Itoa(victim.Index)) {
				t.Errorf("lost-session message: %v", err)
			}
			// It is forgotten, never moved: a retry opens it anew elsewhere, as a new session.
		case err != nil:
			t.Errorf("session on live replica %s: %v", o.replica, err)
		default:
			kept++
			if st.Replica != o.replica {
				t.Errorf("session moved from %s to %s", o.replica, st.Replica)
			}
		}
	}
	if lost == 0 || kept == 0 {
		t.Fatalf("%d sessions lost, %d kept: the kill should cut exactly the victim's share", lost, kept)
	}
	for i := 0; i < 12; i++ {
		s, err := env.OpenSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r, err := episode(ctx, s, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r == strconv.Itoa(victim.Index) {
			t.Fatalf("a new session went to the dead replica %s", r)
		}
	}
	// up heals the dead replica; new sessions go there again (it holds the fewest).
	healed, err := c.Up(ctx, e2e.Image(t, "episodic"), rfenv.WithName(name), rfenv.WithReplicas(3), rfenv.WithReadyTimeout(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer healed.Release()
	s, err := healed.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := episode(ctx, s, 2); err != nil || r != strconv.Itoa(victim.Index) {
		t.Errorf("after heal, a new session went to replica %s (%v), want the healed %d", r, err, victim.Index)
	}
}

// TestE2ESessionsSurviveScaling: scaling 3 → 5 → 3 never moves a session of a kept replica; the
// sessions of removed replicas are lost.
func TestE2ESessionsSurviveScaling(t *testing.T) {
	name := e2e.Name("lib-scale")
	c, env := upEpisodic(t, name, rfenv.UpOptions{Replicas: 3})
	ctx := context.Background()
	img := e2e.Image(t, "episodic")
	type open struct {
		key, episode, replica string
	}
	var sessions []open
	for i := 0; i < 9; i++ {
		s, _ := env.OpenSession(ctx)
		var r struct {
			EpisodeID string `json:"episode_id"`
			Replica   string `json:"replica"`
		}
		if err := s.CallInto(ctx, "reset", nil, &r); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, open{s.Key(), r.EpisodeID, r.Replica})
	}
	step := func(e *rfenv.Env, o open) (stepResult, error) {
		var st stepResult
		err := e.Session(o.key).CallInto(ctx, "step", map[string]any{"episode_id": o.episode}, &st)
		return st, err
	}
	for _, n := range []int{5, 3} {
		scaled, err := c.Up(ctx, img, rfenv.WithName(name), rfenv.WithReplicas(n), rfenv.WithReadyTimeout(10*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range sessions {
			st, err := step(scaled, o)
			if err != nil || st.Replica != o.replica {
				t.Errorf("after scaling to %d, session on replica %s: %+v %v", n, o.replica, st, err)
			}
		}
		scaled.Release()
	}
	// Sessions opened on the replicas 3 and 4, then scaled away, are lost.
	five, err := c.Up(ctx, img, rfenv.WithName(name), rfenv.WithReplicas(5), rfenv.WithReadyTimeout(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var high []open
	for len(high) < 2 {
		s, _ := five.OpenSession(ctx)
		var r struct {
			EpisodeID string `json:"episode_id"`
			Replica   string `json:"replica"`
		}
		if err := s.CallInto(ctx, "reset", nil, &r); err != nil {
			t.Fatal(err)
		}
		if r.Replica == "3" || r.Replica == "4" {
			high = append(high, open{s.Key(), r.EpisodeID, r.Replica})
		}
	}
	five.Release()
	three, err := c.Up(ctx, img, rfenv.WithName(name), rfenv.WithReplicas(3), rfenv.WithReadyTimeout(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer three.Release()
	for _, o := range high {
		if _, err := step(three, o); !errors.Is(err, errs.SessionLost) {
			t.Errorf("session on removed replica %s: %v, want SessionLost", o.replica, err)
		}
	}
}

// TestE2ESessionLimits: --max-sessions refuses the session beyond the limit at once, and a session
// idle past its TTL expires (its next call says so, exit 6).
func TestE2ESessionLimits(t *testing.T) {
	ttl := 2 * time.Second
	_, env := upEpisodic(t, e2e.Name("lib-limits"), rfenv.UpOptions{Replicas: 2, MaxSessions: 2, SessionTTL: ttl})
	ctx := context.Background()
	var keep []*rfenv.Session
	for i := 0; i < 4; i++ {
		s, err := env.OpenSession(ctx)
		if err != nil {
			t.Fatalf("session %d of 4 (2 replicas × 2): %v", i, err)
		}
		keep = append(keep, s)
	}
	if _, err := env.OpenSession(ctx); !errors.Is(err, errs.Infra) || !strings.Contains(err.Error(), "already holds 2 sessions") {
		t.Fatalf("a fifth session: %v, want a clear refusal", err)
	}
	list, _ := env.Sessions(ctx)
	if len(list) != 4 {
		t.Errorf("%d sessions listed, want 4", len(list))
	}
	opened := time.Now()
	e2e.Eventually(t, time.Minute, "the TTL to pass", func() bool { return time.Since(opened) > ttl+100*time.Millisecond })
	_, err := keep[0].Call(ctx, "replica", nil)
	if !errors.Is(err, errs.SessionLost) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("a call on an expired session: %v, want SessionLost (expired)", err)
	}
	if list, _ := env.Sessions(ctx); len(list) != 0 {
		t.Errorf("%d sessions still listed after their TTL", len(list))
	}
	// Expired sessions free their places.
	if _, err := env.OpenSession(ctx); err != nil {
		t.Errorf("a new session after the others expired: %v", err)
	}
}
