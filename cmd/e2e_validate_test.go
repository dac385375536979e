package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfenv/rfenv/pkg/testutil/e2e"
	"github.com/rfenv/rfenv/pkg/validate"
)

// TestE2EValidate builds and starts the deterministic fixture with `up --build` (two replicas) and
// the non-deterministic one, and checks validate's verdicts, files and exit codes on each.
func TestE2EValidate(t *testing.T) {
	e2e.Docker(t)
	c := newCLI(t, e2e.StateDir(t))
	tasks, flaky := e2e.Name("vtasks"), e2e.Name("vflaky")
	r := c.ok("up", "--build", e2e.EnvDir(t, "tasks"), "--name", tasks, "--replicas", "2", "--json")
	if up := decodeJSON[envView](t, r.stdout); up.Name != tasks || up.Image != "tasks:latest" || len(up.Instances) != 2 {
		t.Fatalf("up --build: %+v", up)
	}
	c.ok("up", "--build", e2e.EnvDir(t, "flaky"), "-t", "rfenv-test-flaky:v1", "--name", flaky)

	out := t.TempDir()
	// The whole output names the replica that served it, and each input's two calls go to
	// different replicas: every input is inconsistent.
	r = c.fails(ExitValidateFailed, "validate", tasks, "make_task", "--vary", "task_id=1..10", "--arg", "level=hard", "--output", out, "--json")
	s := decodeJSON[validate.Summary](t, r.stdout)
	if s.Inputs != 10 || s.Inconsistent != 10 || s.Replicas != 2 || s.OK {
		t.Errorf("whole output: %+v", s)
	}
	if len(s.Problems) == 0 || !strings.Contains(s.Problems[0].Reason, "served_by") {
		t.Errorf("problems %+v, want the differing field named", s.Problems)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 11 {
		t.Errorf("%d files in --output, want 10 inputs + summary.json", len(entries))
	}
	one := decodeJSON[validate.Result](t, readFile(t, filepath.Join(out, "00000_task_id=1.json")))
	if len(one.Attempts) != 2 || one.Attempts[0].Replica == one.Attempts[1].Replica || one.Input.Kwargs["level"] != "hard" {
		t.Errorf("input file: %+v", one)
	}

	// Only the prompt: consistent on both replicas, and diverse; progress on a terminal.
	c.tty = true
	r = c.ok("validate", tasks, "make_task", "--vary", "task_id=1..10", "--field", "prompt", "--output", out)
	c.tty = false
	if !strings.Contains(r.stderr, "is consistent: 10/10") || !strings.Contains(r.stderr, "diversity 1.00") || !strings.Contains(r.stderr, "10/10 inputs, 10 consistent") {
		t.Errorf("--field prompt: %s", r.stderr)
	}
	s = decodeJSON[validate.Summary](t, readFile(t, filepath.Join(out, "summary.json")))
	if !s.OK || s.Distinct != 10 || s.Field != "prompt" {
		t.Errorf("summary.json %+v", s)
	}

	// Consistent but not diverse: one task for every id.
	s = decodeJSON[validate.Summary](t, c.ok("validate", tasks, "same_task", "--vary", "task_id=1..5", "--output", out, "--json").stdout)
	if !s.OK || s.Distinct != 1 || len(s.Duplicates) != 1 || len(s.Duplicates[0]) != 5 {
		t.Errorf("same_task: %+v", s)
	}
	// A method that raises for one input.
	s = decodeJSON[validate.Summary](t, c.fails(ExitValidateFailed, "validate", tasks, "picky", "--vary", "task_id=1..4", "--output", out, "--json").stdout)
	if s.Failed != 1 || s.Consistent != 3 || len(s.Problems) != 1 || !strings.Contains(s.Problems[0].Reason, "task 3 is broken") {
		t.Errorf("picky: %+v", s)
	}
	// Not deterministic on a single replica.
	s = decodeJSON[validate.Summary](t, c.fails(ExitValidateFailed, "validate", flaky, "make_task", "--vary", "task_id=1..5", "--field", "prompt", "--output", out, "--json").stdout)
	if s.Inconsistent != 5 || s.Replicas != 1 {
		t.Errorf("flaky: %+v", s)
	}

	c.fails(ExitUsage, "validate", tasks, "make_task", "--output", out)                           // nothing varies
	c.fails(ExitUsage, "validate", tasks, "make_task", "--vary", "task_id=9..1", "--output", out) // empty range
	if r := c.fails(ExitNotFound, "validate", tasks, "nosuch", "--vary", "task_id=1..2", "--output", out); !strings.Contains(r.stderr, "make_task") {
		t.Errorf("unknown method: %s", r.stderr)
	}
	c.fails(ExitNotFound, "validate", e2e.Name("nosuch"), "make_task", "--vary", "task_id=1..2", "--output", out)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
