package cmd

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rfenv/rfenv/pkg/batch"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestE2ESessionProcesses: 300 sessions on 3 replicas, each a reset then 10 steps, every call a
// separate `rfenv call --session` process (as a CI script runs them): no step misses its episode.
// Then the session commands: ls shows them with their calls, close forgets one, stats and ls count.
func TestE2ESessionProcesses(t *testing.T) {
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	pe := newProcEnv(t, dir)
	name := e2e.Name("cli-episodes")
	c.ok("up", e2e.Image(t, "episodic"), "--name", name, "--replicas", "3")
	const sessions, steps, workers = 300, 10, 12
	keys := make(chan int, sessions)
	for i := 0; i < sessions; i++ {
		keys <- i
	}
	close(keys)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				key := fmt.Sprintf("ep-%d", i) // chosen by the script: opened on first use
				r := pe.run("call", name, "reset", "--session", key)
				var reset struct {
					EpisodeID string `json:"episode_id"`
					Replica   string `json:"replica"`
				}
				if r.code != 0 || decodeInto(r.stdout, &reset) != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s reset: exit %d: %s", key, r.code, r.stderr))
					mu.Unlock()
					continue
				}
				for k := 1; k <= steps; k++ {
					r := pe.run("call", name, "step", "--session", key, "--arg", "episode_id="+reset.EpisodeID)
					var st struct {
						Steps   int    `json:"steps"`
						Replica string `json:"replica"`
					}
					if r.code != 0 || decodeInto(r.stdout, &st) != nil || st.Steps != k || st.Replica != reset.Replica {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s step %d: exit %d %s %s", key, k, r.code, r.stdout, r.stderr))
						mu.Unlock()
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d episodes failed; first: %s", len(failures), failures[0])
	}

	list := decodeJSON[[]struct {
		Key     string `json:"key"`
		Replica int    `json:"replica"`
		Calls   int64  `json:"calls"`
	}](t, c.ok("session", "ls", name, "--json").stdout)
	if len(list) != sessions {
		t.Fatalf("session ls: %d sessions, want %d", len(list), sessions)
	}
	per := map[int]int{}
	for _, s := range list {
		per[s.Replica]++
		if s.Calls != steps+1 {
			t.Errorf("session %s counted %d calls, want %d", s.Key, s.Calls, steps+1)
		}
	}
	if len(per) != 3 {
		t.Errorf("sessions on %d replicas, want all 3: %v", len(per), per)
	}
	c.ok("session", "close", name, "ep-0")
	st := decodeJSON[struct {
		TotalSessions int `json:"total_sessions"`
	}](t, c.ok("stats", name, "--json").stdout)
	if st.TotalSessions != sessions-1 {
		t.Errorf("stats: %d sessions, want %d", st.TotalSessions, sessions-1)
	}
	ls := decodeJSON[[]envView](t, c.ok("ls", "--json").stdout)
	if len(ls) != 1 || ls[0].Sessions == nil || *ls[0].Sessions != sessions-1 {
		t.Errorf("ls sessions: %+v", ls)
	}
	// A key from `session open`, then a batch whose lines of one session keep their order.
	key := strings.TrimSpace(c.ok("session", "open", name).stdout)
	var in strings.Builder
	fmt.Fprintf(&in, "{\"session\": %q}\n", key)
	r := c.runStdin(in.String(), "call", name, "reset", "--batch", "-")
	if r.code != 0 {
		t.Fatalf("batch reset: exit %d %s", r.code, r.stderr)
	}
	reset := decodeJSON[batch.Line](t, strings.TrimSpace(r.stdout))
	var ep struct {
		EpisodeID string `json:"episode_id"`
	}
	decodeInto(string(reset.Result), &ep)
	in.Reset()
	for k := 0; k < 20; k++ {
		fmt.Fprintf(&in, "{\"session\": %q, \"episode_id\": %q}\n", key, ep.EpisodeID)
	}
	r = c.runStdin(in.String(), "call", name, "step", "--batch", "-", "--concurrency", "8")
	if r.code != 0 {
		t.Fatalf("batch of steps: exit %d %s", r.code, r.stderr)
	}
	for i, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		line := decodeJSON[batch.Line](t, l)
		var st struct {
			Steps int `json:"steps"`
		}
		decodeInto(string(line.Result), &st)
		if line.Error != nil || st.Steps != i+1 {
			t.Fatalf("batch line %d: %s (steps must come in order)", i, l)
		}
	}
	c.ok("down", name)
}

// TestE2EQueuedDeadlineExit124: with --max-inflight 1, the second of two long calls in a batch waits
// in the queue for the only slot until (about) its deadline: both lines fail as deadlines, the
// command exits 124, and the replica never ran two calls at once.
func TestE2EQueuedDeadlineExit124(t *testing.T) {
	c := newCLI(t, e2e.StateDir(t))
	name := e2e.Name("cli-qdl")
	c.ok("up", e2e.Image(t, "episodic"), "--name", name, "--max-inflight", "1")
	r := c.runStdin("{\"seconds\": 60}\n{\"seconds\": 60}\n", "call", name, "hold", "--batch", "-", "--concurrency", "2", "--timeout", "3s")
	if r.code != ExitDeadline {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, ExitDeadline, r.stdout, r.stderr)
	}
	for i, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		line := decodeJSON[batch.Line](t, l)
		if line.Error == nil || line.Error.Kind != "deadline" {
			t.Errorf("line %d: %s, want a deadline", i, l)
		}
	}
	if peak := strings.TrimSpace(c.ok("call", name, "peak").stdout); peak != "1" {
		t.Errorf("the replica ran %s calls at once; the budget is 1", peak)
	}
}

// runStdin runs a command with stdin.
func (c *cli) runStdin(stdin string, args ...string) result {
	c.t.Helper()
	prev := c.stdin
	c.stdin = stdin
	defer func() { c.stdin = prev }()
	return c.run(args...)
}

func decodeInto(s string, v any) error { return json.Unmarshal([]byte(strings.TrimSpace(s)), v) }
