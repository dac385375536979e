package cmd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// The lean front (`rfenv`, cmd/front) runs plain calls itself and hands everything else to
// rfenv-full. These tests run both binaries of the release as processes against real replicas.

// fullBinaryPath is rfenv-full beside the lean front that rfenvBinary built.
func fullBinaryPath(t testing.TB) string {
	return filepath.Join(filepath.Dir(rfenvBinary(t)), protocol.FullBinaryName)
}

// noFull makes the front unable to find rfenv-full: a line it runs must still work, and a line it
// hands off fails saying so, which proves which of the two happened.
const noFull = "RFENV_FULL=/nonexistent/rfenv-full"

// withoutLogs drops the pool's debug log lines (--verbose), whose timestamps differ between runs.
func withoutLogs(s string) string {
	var kept []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(l, "time=") {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "")
}

// TestE2EFrontParity: for calls that succeed, raise, time out, name no method, carry bad arguments
// or run in a session, the front alone (no rfenv-full to hand to) prints the same stdout and stderr and exits
// with the same code as rfenv-full; lines it does not run reach rfenv-full, and agree too.
func TestE2EFrontParity(t *testing.T) {
	img := e2e.Image(t, "actor")
	dir := e2e.StateDir(t)
	name := uniqueName("front")
	front := newProcEnv(t, dir)
	if r := front.run("up", img, "--name", name, "--replicas", "2"); r.code != 0 {
		t.Fatalf("up: exit %d: %s", r.code, r.stderr)
	}
	frontAlone := newProcEnv(t, dir)
	frontAlone.cfgHome = front.cfgHome
	frontAlone.extra = []string{noFull}
	full := newProcEnv(t, dir)
	full.cfgHome = front.cfgHome
	full.bin = fullBinaryPath(t)

	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
	}{
		{"", []string{"call", name, "add", "--arg", "a=40", "--arg", "b=2"}, ExitOK},
		{"", []string{"-q", "call", name, "echo", "--arg-str", "value=5"}, ExitOK},
		{"[1, 2]", []string{"call", name, "add", "--args-json", "-"}, ExitOK},
		{"", []string{"call", name, "point", "--lb", "round_robin", "--retries", "1", "--timeout", "30"}, ExitOK},
		{"", []string{"call", name, "fail", "--arg", "message=nope"}, ExitMethodRaised},
		{"", []string{"--quiet", "call", name, "fail"}, ExitMethodRaised},
		{"", []string{"call", "-V", name, "fail", "--arg", "message=traced"}, ExitMethodRaised},
		{"", []string{"call", name, "no_such_method"}, ExitNotFound},
		{"", []string{"call", name, "add", "--args-json", "{bad"}, ExitUsage},
		{"", []string{"call", name, "add", "--arg", "a=1", "--arg-str", "a=2"}, ExitUsage},
		{"", []string{"call", name, "add", "--lb", "nonsense"}, ExitUsage},
		{"", []string{"call", name, "sleep", "--arg", "seconds=30", "--timeout", "1s"}, ExitDeadline},
		{"", []string{"call", name, "replica", "--session", "ep-1"}, ExitOK}, // opened by the front's call
		{"", []string{"call", name, "fail", "--session", "ep-1"}, ExitMethodRaised},
	} {
		alone := frontAlone.start(tc.stdin, tc.args...).wait(t, e2e.Patience)
		ref := full.start(tc.stdin, tc.args...).wait(t, e2e.Patience)
		if alone.code != tc.code || ref.code != tc.code {
			t.Errorf("rfenv %s: exit %d from the front, %d from rfenv-full, want %d\nfront stderr: %s\nfull stderr: %s", strings.Join(tc.args, " "), alone.code, ref.code, tc.code, alone.stderr, ref.stderr)
			continue
		}
		if alone.stdout != ref.stdout || withoutLogs(alone.stderr) != withoutLogs(ref.stderr) {
			t.Errorf("rfenv %s: the front and rfenv-full differ\nfront:  %q %q\nfull:   %q %q", strings.Join(tc.args, " "), alone.stdout, alone.stderr, ref.stdout, ref.stderr)
		}
	}
	if r := frontAlone.run("call", name, "add", "--arg", "a=40", "--arg", "b=2"); strings.TrimSpace(r.stdout) != "42" {
		t.Errorf("the front's call printed %q, want 42", r.stdout)
	}
	if r := frontAlone.run("-V", "call", name, "fail", "--arg", "message=traced"); !strings.Contains(r.stderr, "Traceback") {
		t.Errorf("--verbose should show the traceback; stderr: %s", r.stderr)
	}

	// Lines the front does not run: it hands them over before doing anything (without rfenv-full
	// they fail naming it), and through it they print what rfenv-full prints.
	for _, args := range [][]string{
		{"call", "no-such-env", "add"},
		{"call", name, "add", "--timeout", "soon"},
		{"call", name, "add", "--batch", "-"},
		{"call", name, "add", "extra-argument"},
		{"call", "--help"},
		{"ls"},
		{"stats", name, "--json"},
	} {
		if r := frontAlone.run(args...); r.code != ExitInfra || !strings.Contains(r.stderr, protocol.FullBinaryName) {
			t.Errorf("rfenv %s without rfenv-full: exit %d, stderr %q; want exit 4 naming %s (a hand-off)", strings.Join(args, " "), r.code, r.stderr, protocol.FullBinaryName)
		}
		via, ref := front.run(args...), full.run(args...)
		// stats reports live counters, which differ between two runs.
		if via.code != ref.code || (via.stdout != ref.stdout && args[0] != "stats") || via.stderr != ref.stderr {
			t.Errorf("rfenv %s: through the front exit %d %q %q; rfenv-full exit %d %q %q", strings.Join(args, " "), via.code, via.stdout, via.stderr, ref.code, ref.stdout, ref.stderr)
		}
	}
}

// recordingFull is a stand-in for rfenv-full that logs each command line it is given, then runs
// the real one: it shows what the front asked of the full binary.
func recordingFull(t *testing.T) (env string, asked func() []string) {
	dir := t.TempDir()
	log := filepath.Join(dir, "asked")
	script := filepath.Join(dir, protocol.FullBinaryName)
	body := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\nexec %s \"$@\"\n", log, fullBinaryPath(t))
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return "RFENV_FULL=" + script, func() []string {
		b, _ := os.ReadFile(log)
		if len(b) == 0 {
			return nil
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
}

// TestE2EFrontFollowsMovedReplica: the front's call to a replica whose container came back at a
// new address asks rfenv-full where it is (`__front follow NAME 0`), then calls it there itself.
func TestE2EFrontFollowsMovedReplica(t *testing.T) {
	img := e2e.Image(t, "actor")
	dir := e2e.StateDir(t)
	name := uniqueName("front-moved")
	p := newProcEnv(t, dir)
	if r := p.run("up", img, "--name", name); r.code != 0 {
		t.Fatalf("up: exit %d: %s", r.code, r.stderr)
	}
	store, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	in := rec.Instances[0]
	now := e2e.MoveContainer(t, e2e.Docker(t), state.StateID(dir), in.ContainerID, in.Address)
	e2e.Eventually(t, 60*time.Second, "the moved replica to serve", func() bool { return e2e.HealthOK(now, rec.Port) })

	fullEnv, asked := recordingFull(t)
	p.extra = []string{fullEnv}
	if r := p.run("call", name, "add", "--arg", "a=1", "--arg", "b=2", "--timeout", "2m"); r.code != 0 || strings.TrimSpace(r.stdout) != "3" {
		t.Fatalf("call after the move: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if got, want := asked(), []string{fmt.Sprintf("--state-dir %s %s follow %s 0", dir, protocol.FrontServicesCommand, name)}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the front asked rfenv-full %q, want only %q (it makes the call itself)", got, want)
	}
	if rec, err := store.Get(context.Background(), name); err != nil || rec.Instances[0].Address != now {
		t.Errorf("state file records %+v (%v), want the new address %s", rec.Instances, err, now)
	}
}

// TestE2EFrontExplainsLostCall: a call the front made on a replica that the kernel killed for
// running out of memory says so, as rfenv-full's does: the front asks `__front explain`.
func TestE2EFrontExplainsLostCall(t *testing.T) {
	img := e2e.Image(t, "hostile")
	dir := e2e.StateDir(t)
	name := uniqueName("front-oom")
	p := newProcEnv(t, dir)
	if r := p.run("up", img, "--name", name, "--memory", "64m"); r.code != 0 {
		t.Fatalf("up: exit %d: %s", r.code, r.stderr)
	}
	fullEnv, asked := recordingFull(t)
	p.extra = []string{fullEnv}
	r := p.run("call", name, "hog", "--arg", "mb=200", "--timeout", "60s")
	if r.code != ExitInfra || !strings.Contains(r.stderr, "killed for running out of memory") || !strings.Contains(r.stderr, "64MiB") {
		t.Errorf("exit %d, stderr %q; want exit 4 saying the replica ran out of its 64 MiB", r.code, r.stderr)
	}
	if got := asked(); len(got) != 1 || !strings.HasSuffix(got[0], " "+protocol.FrontServicesCommand+" explain "+name+" 0 --after-call") {
		t.Errorf("the front asked rfenv-full %q, want one `%s explain %s 0 --after-call`", got, protocol.FrontServicesCommand, name)
	}
}
