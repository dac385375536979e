//go:build linux

// Command testsshd starts the test OpenSSH server of package sshd for tests that are not Go tests
// (the Python package's): it prints one JSON line, {"target", "addr", "client_key", "known_hosts"},
// and runs until its stdin reaches end of file (its parent exited) or it gets SIGTERM, then stops
// sshd and removes its directory.
//
//	go run ./pkg/testutil/sshd/testsshd
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/rfenv/rfenv/pkg/testutil/sshd"
)

// tb is the part of testing.TB that package sshd uses, outside of a test binary. Embedding the
// interface supplies its unexported method; calling anything not defined here panics.
type tb struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
	failed   bool
}

func (t *tb) Helper()                        {}
func (t *tb) Name() string                   { return "testsshd" }
func (t *tb) Logf(format string, a ...any)   { fmt.Fprintf(os.Stderr, "testsshd: "+format+"\n", a...) }
func (t *tb) Log(a ...any)                   { fmt.Fprintln(os.Stderr, append([]any{"testsshd:"}, a...)...) }
func (t *tb) Errorf(format string, a ...any) { t.failed = true; t.Logf(format, a...) }
func (t *tb) Failed() bool                   { return t.failed }
func (t *tb) Fatal(a ...any)                 { t.Fatalf("%s", fmt.Sprint(a...)) }
func (t *tb) Fatalf(format string, a ...any) { t.Logf(format, a...); t.finish(); os.Exit(1) }
func (t *tb) Cleanup(f func())               { t.mu.Lock(); t.cleanups = append(t.cleanups, f); t.mu.Unlock() }
func (t *tb) Setenv(key, value string)       { os.Setenv(key, value) }
func (t *tb) Skipf(format string, a ...any)  { t.Fatalf(format, a...) }
func (t *tb) TempDir() string {
	d, err := os.MkdirTemp("", "testsshd-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.mu.Lock()
	t.dirs = append(t.dirs, d)
	t.mu.Unlock()
	return d
}

func (t *tb) finish() {
	t.mu.Lock()
	fs, dirs := t.cleanups, t.dirs
	t.cleanups, t.dirs = nil, nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	for _, d := range dirs {
		os.RemoveAll(d)
	}
}

func main() {
	t := &tb{}
	s := sshd.Start(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	s.WriteKnownHosts(t, kh)
	json.NewEncoder(os.Stdout).Encode(map[string]string{
		"target": s.Target(""), "addr": s.Addr, "client_key": s.ClientKeyPath, "known_hosts": kh,
		"known_hosts_line": s.KnownHostsLine(),
	})
	done := make(chan struct{}, 2)
	go func() { io.Copy(io.Discard, os.Stdin); done <- struct{}{} }()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	go func() { <-sigs; done <- struct{}{} }()
	<-done
	s.Stop()
	t.finish()
}
