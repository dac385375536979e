package cmd

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestE2ELifecycle drives build → up → call → methods → stats → ls → reuse → force-recreate → down on
// the real daemon with a real image, checking what really runs after each step.
func TestE2ELifecycle(t *testing.T) {
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	id := state.StateID(dir)

	tag := "rfenv-test-cli-actor:latest"
	r := c.ok("build", e2e.EnvDir(t, "actor"), "-t", tag, "--progress", "plain")
	if strings.TrimSpace(r.stdout) != tag {
		t.Fatalf("build stdout = %q, want only the image reference %q", r.stdout, tag)
	}
	if !strings.Contains(r.stderr, "COPY") {
		t.Errorf("build progress should go to stderr; got %q", r.stderr)
	}

	r = c.ok("up", tag, "--name", e2e.Name("act"), "--replicas", "3", "--json", "-e", "TEST_SECRET=s3cr3t-value")
	up := decodeJSON[envView](t, r.stdout)
	if up.Name != e2e.Name("act") || len(up.Instances) != 3 || up.Type != "function" {
		t.Fatalf("up --json = %+v", up)
	}
	running := e2e.List(t, docker, id)
	if len(running) != 3 {
		t.Fatalf("%d containers run, want 3", len(running))
	}
	var ids []string
	for _, ct := range running {
		ids = append(ids, ct.ID)
		if ct.Labels["rfenv.managed"] != "true" || ct.Labels["rfenv.env"] != e2e.Name("act") || ct.Labels["rfenv.config-hash"] == "" {
			t.Errorf("container %v lacks rfenv's labels: %v", ct.Names, ct.Labels)
		}
	}
	e2e.AssertLoopbackOnly(t, docker, ids)

	// Secrets reach the container but never the state file or output.
	if got := c.ok("call", e2e.Name("act"), "has_secret", "--arg", "name=TEST_SECRET").stdout; strings.TrimSpace(got) != "true" {
		t.Errorf("has_secret = %q, want true", got)
	}
	raw, _ := os.ReadFile(stateFile(dir))
	if strings.Contains(string(raw), "s3cr3t-value") || strings.Contains(r.stdout+r.stderr, "s3cr3t-value") {
		t.Error("a -e value leaked into the state file or output")
	}
	if fi, _ := os.Stat(stateFile(dir)); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}

	// Calls: results, and counts that add up across replicas.
	const n = 30
	for i := 0; i < n; i++ {
		got := c.ok("call", e2e.Name("act"), "add", "--arg", "a="+strconv.Itoa(i), "--arg", "b=2").stdout
		if strings.TrimSpace(got) != strconv.Itoa(i+2) {
			t.Fatalf("add(%d, 2) printed %q", i, got)
		}
	}
	st := decodeJSON[pool.Stats](t, c.ok("stats", e2e.Name("act"), "--json").stdout)
	var sum int64
	for _, in := range st.Instances {
		sum += in.Requests
		if !in.Healthy || in.Host != "localhost" || in.Address == "" || in.Port != 8000 {
			t.Errorf("instance %+v", in)
		}
	}
	if st.TotalInstances != 3 || st.HealthyInstances != 3 || st.TotalRequests != sum || sum != n+1 {
		t.Errorf("stats: total %d healthy %d requests %d (sum %d), want 3/3/%d", st.TotalInstances, st.HealthyInstances, st.TotalRequests, sum, n+1)
	}

	// Methods: public ones only.
	ms := decodeJSON[[]pool.Method](t, c.ok("methods", e2e.Name("act"), "--json").stdout)
	names := map[string]pool.Method{}
	for _, m := range ms {
		names[m.Name] = m
	}
	for _, want := range []string{"add", "echo", "fail", "sleep", "sleep_sync"} {
		if _, ok := names[want]; !ok {
			t.Errorf("methods lacks %s: %v", want, ms)
		}
	}
	for _, hidden := range []string{"_private", "join", "__init__", "Point"} {
		if _, ok := names[hidden]; ok {
			t.Errorf("methods lists %s", hidden)
		}
	}
	if !names["echo"].Async || names["add"].Async || names["add"].Doc != "Add two integers." {
		t.Errorf("method details wrong: %+v %+v", names["echo"], names["add"])
	}
	if table := c.ok("methods", e2e.Name("act")).stdout; !strings.HasPrefix(table, "METHOD\tSIGNATURE\tDESCRIPTION\n") || !strings.Contains(table, "add\t(a: int, b: int = 1) -> int\tAdd two integers.") {
		t.Errorf("methods table:\n%s", table)
	}

	// Errors and exit codes.
	r = c.fails(ExitMethodRaised, "call", e2e.Name("act"), "fail", "--arg", "message=kaput")
	if !strings.Contains(r.stderr, "ValueError: kaput") || strings.Contains(r.stderr, "Traceback") {
		t.Errorf("fail stderr = %q", r.stderr)
	}
	r = c.fails(ExitMethodRaised, "--verbose", "call", e2e.Name("act"), "fail")
	if !strings.Contains(r.stderr, "Traceback") {
		t.Errorf("--verbose should print the traceback: %q", r.stderr)
	}
	r = c.fails(ExitNotFound, "call", e2e.Name("act"), "nope")
	if !strings.Contains(r.stderr, "add") {
		t.Errorf("unknown method error should list methods: %q", r.stderr)
	}
	r = c.fails(ExitNotFound, "call", "nope", "add")
	if !strings.Contains(r.stderr, e2e.Name("act")) {
		t.Errorf("unknown environment error should list environments: %q", r.stderr)
	}
	c.fails(ExitNotFound, "call", e2e.Name("act"), "_private")
	c.fails(ExitUsage, "call", e2e.Name("act"), "add", "--arg", "novalue")
	c.fails(ExitUsage, "call", e2e.Name("act"), "add", "--args-json", "{nope")
	c.fails(ExitUsage, "call", e2e.Name("act"), "add", "--arg", "c=1")
	c.fails(ExitUsage, "call", e2e.Name("act"), "add", "--timeout", "soon")

	// The deadline reaches the server: the async method is cancelled there.
	r = c.fails(ExitDeadline, "call", e2e.Name("act"), "sleep", "--arg", "seconds=30", "--timeout", "300ms")
	if r.elapsed > 3*time.Second {
		t.Errorf("a 300ms deadline took %s", r.elapsed)
	}
	e2e.Eventually(t, 5*time.Second, "in-flight calls to drop to 0", func() bool {
		st := decodeJSON[pool.Stats](t, c.ok("stats", e2e.Name("act"), "--json").stdout)
		for _, in := range st.Instances {
			if in.InFlight != 0 {
				return false
			}
		}
		return true
	})

	// ls.
	ls := decodeJSON[[]envView](t, c.ok("ls", "--json").stdout)
	if len(ls) != 1 || ls[0].Name != e2e.Name("act") || ls[0].Healthy == nil || *ls[0].Healthy != 3 || ls[0].Replicas != 3 {
		t.Errorf("ls --json = %+v", ls)
	}

	// Reuse: same containers, fast.
	r = c.ok("up", tag, "--name", e2e.Name("act"), "--replicas", "3", "--json", "-e", "TEST_SECRET=s3cr3t-value")
	again := decodeJSON[envView](t, r.stdout)
	for i := range again.Instances {
		if again.Instances[i].ID != up.Instances[i].ID {
			t.Errorf("reuse replaced replica %d", i)
		}
	}
	if r.elapsed > time.Second {
		t.Errorf("reusing took %s, want well under a second", r.elapsed)
	}
	// A changed configuration is refused, then replaced with --force-recreate.
	r = c.fails(ExitConflict, "up", tag, "--name", e2e.Name("act"), "--replicas", "3", "-e", "TEST_SECRET=other")
	if !strings.Contains(r.stderr, "--force-recreate") || strings.Contains(r.stderr, "other") {
		t.Errorf("conflict message = %q", r.stderr)
	}
	r = c.ok("up", tag, "--name", e2e.Name("act"), "--replicas", "3", "--json", "--force-recreate")
	recreated := decodeJSON[envView](t, r.stdout)
	for i := range recreated.Instances {
		if recreated.Instances[i].ID == up.Instances[i].ID {
			t.Errorf("--force-recreate kept replica %d", i)
		}
	}
	if got := len(e2e.List(t, docker, id)); got != 3 {
		t.Errorf("%d containers after force-recreate, want 3", got)
	}

	// Down: nothing left, and twice is fine.
	r = c.ok("down", e2e.Name("act"))
	if r.elapsed > 2*time.Second {
		t.Errorf("down of 3 replicas took %s", r.elapsed)
	}
	if left := e2e.List(t, docker, id); len(left) != 0 {
		t.Errorf("%d containers left after down", len(left))
	}
	c.ok("down", e2e.Name("act"))
	if ls := decodeJSON[[]envView](t, c.ok("ls", "--json").stdout); len(ls) != 0 {
		t.Errorf("ls after down = %+v", ls)
	}
}
