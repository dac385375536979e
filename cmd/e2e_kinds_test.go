package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestE2EModuleFunctions: an env.py without an Actor serves its own module-level functions.
func TestE2EModuleFunctions(t *testing.T) {
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	tag := e2e.Image(t, "module")
	c.ok("up", tag, "--name", e2e.Name("mod"), "--replicas", "2")
	if got := strings.TrimSpace(c.ok("call", e2e.Name("mod"), "double", "--arg", "x=21").stdout); got != "42" {
		t.Errorf("double(21) = %s", got)
	}
	if got := strings.TrimSpace(c.ok("call", e2e.Name("mod"), "shout", "--args-json", `["hey"]`).stdout); got != `"HEY"` {
		t.Errorf("shout = %s", got)
	}
	ms := decodeJSON[[]pool.Method](t, c.ok("methods", e2e.Name("mod"), "--json").stdout)
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "double,shout" {
		t.Errorf("methods = %v, want double,shout (no imported dumps, no _helper)", names)
	}
	c.fails(ExitNotFound, "call", e2e.Name("mod"), "dumps", "--args-json", `[1]`)
	c.ok("down", e2e.Name("mod"))
}

// TestE2EHTTPEnvironment: a user's FastAPI server is called by route, listed from its OpenAPI schema.
func TestE2EHTTPEnvironment(t *testing.T) {
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	tag := "rfenv-test-cli-http:latest"
	c.ok("build", e2e.EnvDir(t, "http"), "-t", tag, "--progress", "quiet")
	up := decodeJSON[envView](t, c.ok("up", tag, "--name", e2e.Name("web"), "--replicas", "2", "--json").stdout)
	if up.Type != "http" || up.Port != 8000 {
		t.Fatalf("up = %+v, want an http environment on 8000", up)
	}
	got := strings.TrimSpace(c.ok("call", e2e.Name("web"), "add", "--arg", "a=40", "--arg", "b=2").stdout)
	if got != `{"sum":42}` {
		t.Errorf("add = %s", got)
	}
	ms := decodeJSON[[]pool.Method](t, c.ok("methods", e2e.Name("web"), "--json").stdout)
	if len(ms) != 1 || ms[0].Name != "add" || len(ms[0].Parameters) != 2 {
		t.Errorf("methods = %+v, want the add route with a and b", ms)
	}
	c.fails(ExitUsage, "call", e2e.Name("web"), "add", "--arg", "a=x")
	st := decodeJSON[pool.Stats](t, c.ok("stats", e2e.Name("web"), "--json").stdout)
	if st.HealthyInstances != 2 {
		t.Errorf("stats = %+v", st)
	}
	c.ok("down", e2e.Name("web"))
}

// TestE2EStartupFailures: a constructor that raises, and a syntax error, fail up at once with the
// Python message, and leave nothing behind.
func TestE2EStartupFailures(t *testing.T) {
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	bad := e2e.Image(t, "badctor")
	r := c.fails(ExitInfra, "up", bad, "--name", e2e.Name("bad"), "--replicas", "2")
	if !strings.Contains(r.stderr, "CHUTES_API_KEY not set") {
		t.Errorf("up should report the constructor's error; stderr: %s", r.stderr)
	}
	if left := e2e.List(t, docker, state.StateID(dir)); len(left) != 0 {
		t.Errorf("%d containers left after a failed up", len(left))
	}
	if ls := decodeJSON[[]envView](t, c.ok("ls", "--json").stdout); len(ls) != 0 {
		t.Errorf("a failed up left a state entry: %+v", ls)
	}
	// With the key it comes up, and the value is nowhere in rfenv's output or state.
	r = c.ok("up", bad, "--name", e2e.Name("bad"), "-e", "CHUTES_API_KEY=ck-very-secret")
	raw, _ := os.ReadFile(stateFile(dir))
	if strings.Contains(r.stdout+r.stderr+string(raw), "ck-very-secret") {
		t.Error("secret value leaked")
	}
	c.ok("down", e2e.Name("bad"))

	syn := e2e.Image(t, "syntaxerr")
	r = c.fails(ExitInfra, "up", syn, "--name", e2e.Name("syn"))
	if !strings.Contains(r.stderr, "SyntaxError") {
		t.Errorf("up should report the SyntaxError; stderr: %s", r.stderr)
	}
}

// TestE2EBuildErrors: missing env.py, and a failing Dockerfile step.
func TestE2EBuildErrors(t *testing.T) {
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	empty := t.TempDir()
	r := c.fails(ExitUsage, "build", empty, "-t", "rfenv-test-nothing:latest")
	if !strings.Contains(r.stderr, "env.py") {
		t.Errorf("stderr = %s", r.stderr)
	}
	c.fails(ExitUsage, "build", e2e.EnvDir(t, "actor"))

	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "env.py"), []byte("def f():\n    return 1\n"), 0o644)
	os.WriteFile(filepath.Join(broken, "Dockerfile"), []byte("FROM rfenv-python:bookworm\nRUN echo about-to-fail && exit 3\n"), 0o644)
	r = c.run("build", broken, "-t", "rfenv-test-broken:latest", "--progress", "quiet")
	if r.code == 0 {
		t.Fatal("a failing RUN step must fail the build")
	}
	if !strings.Contains(r.stderr, "about-to-fail") || !strings.Contains(r.stderr, "RUN") {
		t.Errorf("the error should show the step and its log; stderr: %s", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout should stay empty on failure, got %q", r.stdout)
	}
	c.fails(ExitNotFound, "up", "rfenv-test-does-not-exist:latest")
}

// TestE2EPull: --pull with no registry reachable keeps the local image (with a warning); an image
// that exists nowhere fails with exit 3.
func TestE2EPull(t *testing.T) {
	c := newCLI(t, e2e.StateDir(t))
	c.tty = true
	r := c.ok("up", e2e.Image(t, "module"), "--name", e2e.Name("pulled"), "--pull")
	if !strings.Contains(r.stderr, "using its local copy") {
		t.Errorf("up --pull without a registry should say it kept the local image: %s", r.stderr)
	}
	c.ok("down", e2e.Name("pulled"))
	c.fails(ExitNotFound, "up", "rfenv-test-nowhere:latest", "--pull")
}
