package cmd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfenv/rfenv/cmd/iostreams"
)

// cli runs rfenv in-process against the real daemon, with its own state dir and no user config.
type cli struct {
	t        testing.TB
	stateDir string
	env      map[string]string
	tty      bool
	stdin    string
}

type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

func newCLI(t testing.TB, stateDir string) *cli {
	cfgHome := t.TempDir()
	return &cli{t: t, stateDir: stateDir, env: map[string]string{
		"XDG_CONFIG_HOME": cfgHome,
		"HOME":            os.Getenv("HOME"),
		"PATH":            os.Getenv("PATH"),
		// A loaded CI machine can take more than the default minute to start many replicas at once.
		"RFENV_READY_TIMEOUT": testReadyTimeout,
	}}
}

// testReadyTimeout is how long ups in tests wait for replicas: waits end when the replicas answer,
// so a generous bound costs a passing test nothing.
const testReadyTimeout = "10m"

func (c *cli) getenv(k string) string { return c.env[k] }

func (c *cli) run(args ...string) result {
	return c.runCtx(context.Background(), args...)
}

func (c *cli) runCtx(ctx context.Context, args ...string) result {
	c.t.Helper()
	ios, in, out, errOut := iostreams.Test()
	ios.SetTTY(c.tty)
	in.WriteString(c.stdin)
	full := append([]string{"--state-dir", c.stateDir}, args...)
	start := time.Now()
	code := Execute(ctx, ios, c.getenv, full)
	return result{stdout: out.String(), stderr: errOut.String(), code: code, elapsed: time.Since(start)}
}

// ok runs a command that must succeed.
func (c *cli) ok(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("rfenv %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// fails runs a command that must exit with code.
func (c *cli) fails(code int, args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code {
		c.t.Fatalf("rfenv %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

func decodeJSON[T any](t testing.TB, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

func stateFile(dir string) string { return filepath.Join(dir, "state.json") }
