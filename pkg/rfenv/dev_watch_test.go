package rfenv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
)

// TestWatchTree runs the watcher on a real directory: a burst of writes is one callback naming
// the changed files, editor and bytecode files are ignored, and a new subdirectory is watched.
func TestWatchTree(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan []string, 10)
	done := make(chan error, 1)
	go func() { done <- watchTree(ctx, dir, 50*time.Millisecond, func(c []string) { got <- c }) }()
	next := func() []string {
		t.Helper()
		select {
		case c := <-got:
			return c
		case <-time.After(60 * time.Second):
			t.Fatal("no change reported")
			return nil
		}
	}
	write := func(rel string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The watcher adds its watches before its first event; give it a file it must report to prove
	// it is running (writes before that could be missed).
	var first []string
	for first == nil {
		write("probe.txt")
		select {
		case first = <-got:
		case <-time.After(200 * time.Millisecond):
		}
	}
	for range 5 {
		write("env.py")
	}
	write(".env.py.swp")
	write("__pycache__/env.cpython-312.pyc")
	write("data.json")
	if c := next(); !reflect.DeepEqual(c, []string{"data.json", "env.py"}) {
		t.Errorf("changed %v, want [data.json env.py] in one report", c)
	}
	if err := os.Mkdir(filepath.Join(dir, "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	next() // the new directory itself
	write("pkg/util.py")
	if c := next(); !reflect.DeepEqual(c, []string{"pkg/util.py"}) {
		t.Errorf("changed %v, want [pkg/util.py]", c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watchTree: %v", err)
	}
}

func TestDevHost(t *testing.T) {
	for _, tc := range []struct {
		hosts      []string
		dockerHost string
		want       host.Kind
		ok         bool
	}{
		{nil, "", host.Local, true},
		{[]string{"localhost"}, "unix:///var/run/docker.sock", host.Local, true},
		{[]string{"unix:///run/docker.sock"}, "", host.Unix, true},
		{[]string{"ssh://gpu-box"}, "", "", false},
		{[]string{"localhost", "ssh://gpu-box"}, "", "", false},
		{[]string{"k8s://"}, "", "", false},
		{nil, "tcp://10.0.0.1:2375", "", false},
		{nil, "ssh://me@box", "", false},
	} {
		sp, err := DevHost(tc.hosts, tc.dockerHost)
		if tc.ok != (err == nil) || (err == nil && sp.Kind != tc.want) {
			t.Errorf("DevHost(%v, %q) = %v, %v", tc.hosts, tc.dockerHost, sp, err)
		}
		if err != nil && !errors.Is(err, errs.Usage) {
			t.Errorf("DevHost(%v, %q): %v is not a usage error", tc.hosts, tc.dockerHost, err)
		}
	}
}

func TestReloadErrorLocalPaths(t *testing.T) {
	e := &ReloadError{Type: "EnvLoadError", Message: "env.py failed to load: /app/env.py:2: SyntaxError: expected ':'", File: "/app/env.py", Line: 2,
		Traceback: `File "/app/env.py", line 2`}
	e.localPaths("/app", "/home/me/calc")
	if e.File != "/home/me/calc/env.py" || e.Traceback != `File "/home/me/calc/env.py", line 2` {
		t.Errorf("%+v", e)
	}
	if got, want := e.Error(), "EnvLoadError: env.py failed to load: /home/me/calc/env.py:2: SyntaxError: expected ':'"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (&ReloadError{Type: "SyntaxError", Message: "bad", File: "/x/env.py", Line: 3}).Error(); got != "/x/env.py:3: SyntaxError: bad" {
		t.Errorf("Error() = %q", got)
	}
}
