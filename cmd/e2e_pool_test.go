package cmd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rfenv/rfenv/pkg/batch"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestE2ERoundRobinAcrossProcesses: separate `rfenv call` invocations share one rotation through the
// counter beside the state file.
func TestE2ERoundRobinAcrossProcesses(t *testing.T) {
	c := newCLI(t, e2e.StateDir(t))
	c.ok("up", e2e.Image(t, "actor"), "--name", e2e.Name("cli-rr"), "--replicas", "3", "--lb", "round_robin")
	seen := map[string]int{}
	for i := 0; i < 30; i++ {
		r := strings.Trim(strings.TrimSpace(c.ok("call", e2e.Name("cli-rr"), "replica").stdout), `"`)
		seen[r]++
	}
	if seen["0"] != 10 || seen["1"] != 10 || seen["2"] != 10 {
		t.Errorf("30 separate calls split %v, want 10 each", seen)
	}
}

// TestE2EBatchCLI: --batch answers every line in input order, keeps going past bad lines, and its
// exit code says whether all succeeded.
func TestE2EBatchCLI(t *testing.T) {
	c := newCLI(t, e2e.StateDir(t))
	c.ok("up", e2e.Image(t, "actor"), "--name", e2e.Name("b"), "--replicas", "2")
	var in strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&in, "{\"a\": %d, \"b\": 1}\n", i)
	}
	c.stdin = in.String()
	r := c.ok("call", e2e.Name("b"), "add", "--batch", "-", "--concurrency", "8")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 200 {
		t.Fatalf("%d lines, want 200", len(lines))
	}
	for i, l := range lines {
		line := decodeJSON[batch.Line](t, l)
		if line.Index != i || line.Error != nil || string(line.Result) != fmt.Sprint(i+1) {
			t.Fatalf("line %d = %s", i, l)
		}
	}
	c.stdin = "{\"args\": [1, 2]}\nnot json\n\n{\"a\": \"x\"}\n{\"a\": 5}\n"
	r = c.run("call", e2e.Name("b"), "add", "--batch", "-")
	if r.code == 0 {
		t.Fatal("a batch with failed lines must exit non-zero")
	}
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines for 4 inputs (blank lines skip): %q", len(lines), r.stdout)
	}
	want := []string{"3", "usage", "method_raised", "6"}
	for i, l := range lines {
		line := decodeJSON[batch.Line](t, l)
		got := string(line.Result)
		if line.Error != nil {
			got = line.Error.Kind
		}
		if got != want[i] {
			t.Errorf("line %d = %s, want %s", i, l, want[i])
		}
	}
	st := decodeJSON[pool.Stats](t, c.ok("stats", e2e.Name("b"), "--json").stdout)
	if st.TotalRequests != 203 {
		t.Errorf("servers saw %d calls, want 203 (200 + 3 that reached them)", st.TotalRequests)
	}
}
