package cmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// devEnvPy is a dev test's env.py: version() returns v, and the constructor reads a file beside
// env.py (so that a reload must re-run the constructor to see a change of it).
func devEnvPy(v string) string {
	return "import os\n\nclass Actor:\n    def __init__(self):\n        here = os.path.dirname(os.path.abspath(__file__))\n" +
		"        self.motd = open(os.path.join(here, 'motd.txt')).read().strip()\n\n" +
		"    def version(self):\n        return " + v + "\n\n    def motd_text(self):\n        return self.motd\n"
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	// Write to a temporary file and rename, as editors do: the watcher sees the new file at once.
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestE2EDevHotReload runs `rfenv dev` on a directory, edits env.py and a data file the Actor
// reads, breaks env.py and fixes it, and checks each time through `rfenv call` in another "terminal"
// (a second CLI on the same state) that the replicas answer with the new code, or with the error
// naming env.py and its line; then Ctrl-C (the context) removes the replicas.
func TestE2EDevHotReload(t *testing.T) {
	docker := e2e.Docker(t)
	stateDir := e2e.StateDir(t)
	dir := filepath.Join(t.TempDir(), "devcalc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile(e2e.EnvDir(t, "actor") + "/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "Dockerfile"), string(dockerfile))
	writeFile(t, filepath.Join(dir, "motd.txt"), "hello")
	writeFile(t, filepath.Join(dir, "env.py"), devEnvPy("1"))
	name := e2e.Name("dev")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	devCLI := newCLI(t, stateDir)
	done := make(chan result, 1)
	go func() {
		done <- devCLI.runCtx(ctx, "dev", dir, "--name", name, "--replicas", "2", "--progress", "quiet")
	}()

	c := newCLI(t, stateDir)
	// callUntil waits for `rfenv call NAME METHOD` to print want on every replica (round-robin
	// calls, four in a row) - a build and start come first.
	callUntil := func(method, want string) {
		t.Helper()
		var last result
		e2e.Eventually(t, 3*time.Minute, method+" printing "+want, func() bool {
			select {
			case r := <-done:
				t.Fatalf("rfenv dev ended early: exit %d\n%s", r.code, r.stderr)
			default:
			}
			for range 4 {
				last = c.run("call", name, method, "--lb", "round_robin")
				if last.code != 0 || strings.TrimSpace(last.stdout) != want {
					return false
				}
			}
			return true
		})
	}
	callUntil("version", "1")
	rec := func() *state.Environment {
		f, err := state.Open(stateDir)
		if err != nil {
			t.Fatal(err)
		}
		e, err := f.Get(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}()
	if len(rec.Instances) != 2 {
		t.Fatalf("%d replicas, want 2", len(rec.Instances))
	}
	// The directory is mounted read-only over the code directory.
	for _, in := range rec.Instances {
		ins := e2e.Inspect(t, docker, in.ContainerID)
		found := false
		for _, m := range ins.Mounts {
			if m.Source == dir && m.Destination == "/app" && !m.RW {
				found = true
			}
		}
		if !found {
			t.Errorf("replica %d mounts %+v, want %s read-only at /app", in.Index, ins.Mounts, dir)
		}
	}

	writeFile(t, filepath.Join(dir, "env.py"), devEnvPy("2"))
	callUntil("version", "2")
	writeFile(t, filepath.Join(dir, "motd.txt"), "changed")
	callUntil("motd_text", `"changed"`)

	// A broken save: calls answer with the error and its place, never with the old code.
	writeFile(t, filepath.Join(dir, "env.py"), "class Actor:\n    def version(self)\n        return 3\n")
	var broken result
	e2e.Eventually(t, 2*time.Minute, "calls failing with the syntax error", func() bool {
		broken = c.run("call", name, "version")
		return broken.code != 0
	})
	if !strings.Contains(broken.stderr, "env.py") || !strings.Contains(broken.stderr, "2") || strings.Contains(broken.stdout, "2") {
		t.Errorf("call after a broken save: exit %d stdout %q stderr %q; want the error naming env.py and line 2", broken.code, broken.stdout, broken.stderr)
	}
	writeFile(t, filepath.Join(dir, "env.py"), devEnvPy("3"))
	callUntil("version", "3")
	// A constructor that raises: the same, with the exception's message.
	writeFile(t, filepath.Join(dir, "env.py"), "class Actor:\n    def __init__(self):\n        raise RuntimeError('no config here')\n\n    def version(self):\n        return 4\n")
	e2e.Eventually(t, 2*time.Minute, "calls failing with the constructor's error", func() bool {
		broken = c.run("call", name, "version")
		return broken.code != 0 && strings.Contains(broken.stderr, "no config here")
	})
	if strings.Contains(broken.stdout, "3") {
		t.Errorf("the old code answered after a failed reload: %q", broken.stdout)
	}
	writeFile(t, filepath.Join(dir, "env.py"), devEnvPy("5"))
	callUntil("version", "5")

	// methods and stats work as on any environment.
	if r := c.ok("methods", name); !strings.Contains(r.stdout, "motd_text") {
		t.Errorf("methods: %q", r.stdout)
	}
	st := decodeJSON[pool.Stats](t, c.ok("stats", name, "--json").stdout)
	if st.TotalInstances != 2 || st.HealthyInstances != 2 {
		t.Errorf("stats %+v", st)
	}

	stop() // Ctrl-C
	var r result
	select {
	case r = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("rfenv dev did not end after its context was cancelled")
	}
	if r.code != 0 {
		t.Errorf("rfenv dev exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"reloaded env.py on 2 replica(s)", "reloaded motd.txt", "reload of env.py failed on replica", filepath.Join(dir, "env.py") + ":2", "no config here", "removed " + name} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("dev's stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if left := e2e.List(t, docker, state.StateID(stateDir)); len(left) != 0 {
		t.Errorf("%d containers left after Ctrl-C", len(left))
	}
	c.fails(ExitNotFound, "call", name, "version")
}

// TestE2EDevRefusesRemoteDaemon: rfenv dev mounts a local directory, so another daemon is refused
// before anything is built.
func TestE2EDevRefusesRemoteDaemon(t *testing.T) {
	c := newCLI(t, t.TempDir())
	c.env["DOCKER_HOST"] = "tcp://192.0.2.1:2375"
	r := c.fails(ExitUsage, "dev", e2e.EnvDir(t, "actor"))
	if !strings.Contains(r.stderr, "local Docker daemon only") {
		t.Errorf("stderr %q", r.stderr)
	}
	c.fails(ExitUsage, "dev", "https://example.invalid/r.git")
	c.fails(ExitUsage, "dev", t.TempDir()) // no env.py
}

// TestE2EDevOwnWorkdir: with a Dockerfile that puts the code elsewhere than /app, dev mounts the
// directory where the shim loads env.py from (the image's RFENV_APP_DIR); --json prints one event
// per line.
func TestE2EDevOwnWorkdir(t *testing.T) {
	e2e.Docker(t)
	stateDir := e2e.StateDir(t)
	dir := filepath.Join(t.TempDir(), "workdir")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM rfenv-python:bookworm\nWORKDIR /srv/env\nCOPY . /srv/env\n")
	writeFile(t, filepath.Join(dir, "motd.txt"), "hi")
	writeFile(t, filepath.Join(dir, "env.py"), devEnvPy("1"))
	name := e2e.Name("devwd")
	c := newCLI(t, stateDir)
	// An environment `up` started is never taken over (dev would remove it at the end).
	c.ok("up", e2e.Image(t, "actor"), "--name", name)
	if r := c.fails(ExitConflict, "dev", dir, "--name", name, "--progress", "quiet"); !strings.Contains(r.stderr, "not a dev environment") {
		t.Errorf("dev over an up environment: %s", r.stderr)
	}
	c.ok("call", name, "add", "--arg", "a=1")
	c.ok("down", name)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done, stdout := runDevAsync(ctx, newCLI(t, stateDir), "dev", dir, "--name", name, "-t", name+":wd", "--json", "--progress", "quiet")
	want := "1"
	e2e.Eventually(t, 3*time.Minute, "version "+want, func() bool {
		r := c.run("call", name, "version")
		return r.code == 0 && strings.TrimSpace(r.stdout) == want
	})
	writeFile(t, filepath.Join(dir, "env.py"), devEnvPy("2"))
	want = "2"
	e2e.Eventually(t, 2*time.Minute, "version "+want, func() bool {
		r := c.run("call", name, "version")
		return r.code == 0 && strings.TrimSpace(r.stdout) == want
	})
	// The replica answers with the new code a moment before dev has read its /reload reply.
	e2e.Eventually(t, time.Minute, "the reload event", func() bool { return strings.Contains(stdout.String(), `"event":"reload"`) })
	stop()
	r := <-done
	if r.code != 0 {
		t.Fatalf("dev: exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("--json printed %q, want a ready and a reload event", r.stdout)
	}
	ready := decodeJSON[devEvent](t, lines[0])
	reload := decodeJSON[devEvent](t, lines[len(lines)-1])
	if ready.Event != "ready" || ready.CodeDir != "/srv/env" || ready.Name != name {
		t.Errorf("ready event %+v", ready)
	}
	if reload.Event != "reload" || !reload.OK || len(reload.Replicas) != 1 || len(reload.Changed) == 0 || reload.Changed[0] != "env.py" {
		t.Errorf("reload event %+v", reload)
	}
}

// runDevAsync runs a long-lived command (rfenv dev) until ctx ends; its stdout can be read while
// it runs. The result's stdout is empty: read the returned buffer.
func runDevAsync(ctx context.Context, c *cli, args ...string) (<-chan result, *syncBuffer) {
	ios, _, _, errOut := iostreams.Test()
	out := &syncBuffer{}
	ios.Out = out
	done := make(chan result, 1)
	go func() {
		code := Execute(ctx, ios, c.getenv, append([]string{"--state-dir", c.stateDir}, args...))
		done <- result{stderr: errOut.String(), code: code}
	}()
	return done, out
}
