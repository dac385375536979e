package cmd

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
	"github.com/rfenv/rfenv/shim"
)

// containerPrint makes a replica's server process write a line to its stdout (fd 1) or stderr (fd 2),
// as env.py's prints would.
func containerPrint(t *testing.T, container string, fd int, line string) {
	t.Helper()
	script := fmt.Sprintf("printf '%%s\\n' '%s' > /proc/1/fd/%d", strings.ReplaceAll(line, "'", `'\''`), fd)
	if out, err := exec.Command("docker", "exec", container, "sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("docker exec %s: %v: %s", container, err, out)
	}
}

// TestE2ELogs: logs of every replica, prefixed, from the real containers; --replica and --tail.
func TestE2ELogs(t *testing.T) {
	c := newCLI(t, e2e.StateDir(t))
	name := e2e.Name("rfx-logs")
	c.ok("up", e2e.Image(t, "actor"), "--name", name, "--replicas", "2")
	c.ok("call", name, "add", "--arg", "a=1")
	containerPrint(t, name+"-0", 2, "marker-zero on stderr")
	containerPrint(t, name+"-1", 1, "marker-one on stdout")

	// Docker writes a container's output to its log asynchronously: poll until the markers are in.
	var out string
	e2e.Eventually(t, 20*time.Second, "both markers in rfenv logs", func() bool {
		out = c.ok("logs", name).stdout
		return strings.Contains(out, "marker-zero") && strings.Contains(out, "marker-one")
	})
	for _, want := range []string{
		name + "-0 | rfenv-shim: v" + shim.Version + " listening on 0.0.0.0:8000",
		name + "-0 | rfenv-shim: ready: ",
		name + "-1 | rfenv-shim: v" + shim.Version + " listening on 0.0.0.0:8000",
		name + "-1 | rfenv-shim: ready: ",
		name + "-0 | marker-zero on stderr\n",
		name + "-1 | marker-one on stdout\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	// Without --follow, replica 0's log comes whole before replica 1's.
	if strings.LastIndex(out, name+"-0 | ") > strings.Index(out, name+"-1 | ") {
		t.Errorf("replicas' logs are mixed:\n%s", out)
	}

	one := c.ok("logs", name, "--replica", "1").stdout
	if strings.Contains(one, " | ") || strings.Contains(one, "marker-zero") || !strings.Contains(one, "marker-one on stdout") ||
		!strings.HasPrefix(one, "rfenv-shim: v"+shim.Version+" listening") {
		t.Errorf("--replica 1 should show replica 1 only, unprefixed:\n%s", one)
	}
	if got := c.ok("logs", name, "--replica", "1", "--tail", "1").stdout; got != "marker-one on stdout\n" {
		t.Errorf("--replica 1 --tail 1 = %q, want the last line", got)
	}
	tail := strings.Split(strings.TrimSuffix(c.ok("logs", name, "--tail", "1").stdout, "\n"), "\n")
	if len(tail) != 2 || tail[0] != name+"-0 | marker-zero on stderr" || tail[1] != name+"-1 | marker-one on stdout" {
		t.Errorf("--tail 1 = %q, want the last line of each replica", tail)
	}
	if got := c.ok("logs", name, "--tail", "0").stdout; got != "" {
		t.Errorf("--tail 0 = %q, want nothing", got)
	}

	r := c.fails(ExitNotFound, "logs", name, "--replica", "2")
	if !strings.Contains(r.stderr, "no replica 2") || !strings.Contains(r.stderr, "0, 1") {
		t.Errorf("unknown replica: %q", r.stderr)
	}
	c.fails(ExitUsage, "logs", name, "--replica", "-1")
	c.fails(ExitUsage, "logs", name, "--tail", "some")
	if r := c.fails(ExitNotFound, "logs", "nope"); !strings.Contains(r.stderr, name) {
		t.Errorf("unknown environment should list the active ones: %q", r.stderr)
	}
}

// logsBuffer is a bytes.Buffer that a command writes while the test reads it.
type logsBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *logsBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *logsBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestE2ELogsFollow: --follow streams both replicas at once, whole lines only, and stops when the
// context is cancelled.
func TestE2ELogsFollow(t *testing.T) {
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	name := e2e.Name("rfx-logsf")
	c.ok("up", e2e.Image(t, "actor"), "--name", name, "--replicas", "2")

	ios, _, _, errOut := iostreams.Test()
	out := &logsBuffer{}
	ios.Out = out
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Execute(ctx, ios, c.getenv, []string{"--state-dir", dir, "logs", name, "-f", "--tail", "0"})
	}()

	// The stream attaches at some point after start: print until a line comes through.
	n := 0
	e2e.Eventually(t, 30*time.Second, "a new line streamed by logs -f", func() bool {
		n++
		containerPrint(t, name+"-1", 1, fmt.Sprintf("attach-%d", n))
		return strings.Contains(out.String(), name+"-1 | attach-")
	})

	// Both replicas write many lines at once, some in pieces: every line must come out whole, with
	// its own replica's prefix.
	const lines = 200
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			script := fmt.Sprintf(`for n in $(seq %d); do printf 'r%d-line-%%s-' $n; printf 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n'; done > /proc/1/fd/1`, lines, i)
			if out, err := exec.Command("docker", "exec", fmt.Sprintf("%s-%d", name, i), "sh", "-c", script).CombinedOutput(); err != nil {
				t.Errorf("docker exec: %v: %s", err, out)
			}
		}()
	}
	wg.Wait()
	e2e.Eventually(t, 30*time.Second, "every line streamed", func() bool {
		s := out.String()
		return strings.Count(s, "-line-") >= 2*lines
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("logs -f ended with exit %d after the context was cancelled; stderr: %s", code, errOut.String())
		}
	case <-time.After(e2e.Patience):
		t.Fatal("logs -f did not stop when its context was cancelled")
	}

	line := regexp.MustCompile(`^(` + name + `-0 \| r0|` + name + `-1 \| r1)-line-\d+-x{32}$`)
	attach := regexp.MustCompile(`^` + name + `-1 \| attach-\d+$`)
	got := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		switch {
		case line.MatchString(l):
			got[l[:len(name)+2]]++
		case attach.MatchString(l):
		default:
			t.Errorf("interleaved or unprefixed line: %q", l)
		}
	}
	if got[name+"-0"] != lines || got[name+"-1"] != lines {
		t.Errorf("lines per replica = %v, want %d each", got, lines)
	}
}
