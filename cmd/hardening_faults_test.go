package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/batch"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
	"github.com/rfenv/rfenv/pkg/testutil/reliability"
)

// TestE2EHardeningSignalDuringUp interrupts `rfenv up --replicas 6` (a real process) once its first
// container exists: it exits 130, leaves nothing that `down` cannot find, and the state file parses.
func TestE2EHardeningSignalDuringUp(t *testing.T) {
	img := e2e.Image(t, "hostile")
	docker := e2e.Docker(t)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
	}{{"SIGINT", syscall.SIGINT}, {"SIGTERM", syscall.SIGTERM}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := e2e.StateDir(t)
			id := state.StateID(dir)
			pe := newProcEnv(t, dir)
			name := uniqueName("hsig")
			p := pe.start("", "up", img, "--name", name, "--replicas", "6")
			e2e.Eventually(t, time.Minute, "the first labelled container", func() bool {
				return p.exited() || len(e2e.List(t, docker, id)) > 0
			})
			if p.exited() {
				t.Fatalf("up ended before a container appeared: %+v", p.res)
			}
			seen := len(e2e.List(t, docker, id))
			assertNoPorts(t, docker, dir)
			sent := time.Now()
			p.signal(t, tc.sig)
			r := p.wait(t, time.Minute)
			took := time.Since(sent)
			if r.code != ExitInterrupted {
				t.Fatalf("up after %s: exit %d, want %d\nstderr: %s", tc.name, r.code, ExitInterrupted, r.stderr)
			}
			if !strings.Contains(r.stderr, "interrupted") {
				t.Errorf("stderr should say up was interrupted: %s", r.stderr)
			}
			// up removes what it started itself, including containers whose create was in flight.
			if left := e2e.List(t, docker, id); len(left) != 0 {
				t.Errorf("%d container(s) left after the interrupted up", len(left))
			}
			assertAccounted(t, docker, dir, name)
			f := readStateFile(t, dir) // parses, or the test fails
			if f.Environments[name] != nil {
				t.Errorf("the interrupted up left a state entry: %+v", f.Environments[name])
			}

			if r := pe.run("down", name); r.code != 0 {
				t.Fatalf("down %s: exit %d: %s", name, r.code, r.stderr)
			}
			orph := pe.run("down", "--orphans", "--json")
			if orph.code != 0 {
				t.Fatalf("down --orphans: exit %d: %s", orph.code, orph.stderr)
			}
			if n := len(e2e.List(t, docker, id)); n != 0 {
				t.Fatalf("%d container(s) survive down and down --orphans", n)
			}
			if f := readStateFile(t, dir); len(f.Environments) != 0 {
				t.Errorf("state still lists %v after down", f.Names())
			}
			did := fmt.Sprintf("exit 130 %s after the signal (%d of 6 containers existed then); removed every container it had started, none left, no state entry; `down NAME` and `down --orphans` find nothing more; state.json valid",
				secs(took), seen)
			reliability.Record(t, reliability.Faults, tc.name+" to `rfenv up --replicas 6` while replicas start", did,
				reliability.NoCalls("the containers of this state dir (none left), the state entry (none) and that state.json parses"))
		})
	}
}

// TestE2EHardeningSignalDuringCall interrupts a long call and a batch of long calls: exit 130, and the
// servers cancel the async calls (in flight drops to 0) because the client's connections close.
func TestE2EHardeningSignalDuringCall(t *testing.T) {
	img := e2e.Image(t, "hostile")
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	pe := newProcEnv(t, dir)
	name := uniqueName("hcall")
	c.ok("up", img, "--name", name, "--replicas", "2")
	assertNoPorts(t, e2e.Docker(t), dir)

	t.Run("single", func(t *testing.T) {
		before := served(t, c, name)
		p := pe.start("", "call", name, "sleep", "--arg", "seconds=30", "--timeout", "2m")
		e2e.Eventually(t, 30*time.Second, "the call to reach a replica", func() bool { return p.exited() || inFlight(t, c, name) == 1 })
		if p.exited() {
			t.Fatalf("the call ended before it was interrupted: %+v", p.res)
		}
		sent := time.Now()
		p.signal(t, syscall.SIGINT)
		r := p.wait(t, 30*time.Second)
		if r.code != ExitInterrupted {
			t.Fatalf("call after SIGINT: exit %d, want 130\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		exit := time.Since(sent)
		e2e.Eventually(t, 10*time.Second, "in-flight calls to drop to 0", func() bool { return inFlight(t, c, name) == 0 })
		drained := time.Since(sent)
		answered := 1 // the interrupted call, exit 130
		if got := strings.TrimSpace(c.ok("call", name, "echo", "--arg", "value=1").stdout); got != "1" {
			t.Errorf("a call after the interrupted one = %s", got)
		} else {
			answered++
		}
		// The server counts the cancelled call once (abandoned) and the next one once.
		executed := executedSince(t, c, name, before)
		if executed != 2 {
			t.Errorf("the replicas counted %d calls, want 2 (the interrupted one and the next)", executed)
		}
		reliability.Record(t, reliability.Faults, "SIGINT to `rfenv call NAME sleep --arg seconds=30`, then one more call",
			fmt.Sprintf("exit 130 in %s; the server cancelled the async call (in flight 1 → 0 within %s); the next call succeeds", secs(exit), secs(drained)),
			reliability.Calls(2, answered, executed, byShimStats))
	})

	t.Run("batch", func(t *testing.T) {
		const n = 8
		path := filepath.Join(t.TempDir(), "sleeps.jsonl")
		os.WriteFile(path, []byte(strings.Repeat("{\"seconds\": 30}\n", n)), 0o644)
		before := served(t, c, name)
		p := pe.start("", "call", name, "sleep", "--batch", path, "--concurrency", fmt.Sprint(n), "--timeout", "2m")
		e2e.Eventually(t, 30*time.Second, "the batch's calls to reach the replicas", func() bool { return p.exited() || inFlight(t, c, name) == n })
		if p.exited() {
			t.Fatalf("the batch ended before it was interrupted: %+v", p.res)
		}
		sent := time.Now()
		p.signal(t, syscall.SIGINT)
		r := p.wait(t, 30*time.Second)
		if r.code != ExitInterrupted {
			t.Fatalf("batch after SIGINT: exit %d, want 130\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		exit := time.Since(sent)
		e2e.Eventually(t, 10*time.Second, "in-flight calls to drop to 0", func() bool { return inFlight(t, c, name) == 0 })
		drained := time.Since(sent)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		interrupted := 0
		for _, l := range lines {
			if l == "" {
				continue
			}
			line := decodeJSON[batch.Line](t, l)
			if line.Error != nil && line.Error.Kind == "interrupted" {
				interrupted++
			}
		}
		if interrupted != n {
			t.Errorf("%d of %d lines reported as interrupted, want all\nstdout: %s", interrupted, n, r.stdout)
		}
		executed := executedSince(t, c, name, before)
		if executed != n {
			t.Errorf("the replicas counted %d calls, want the %d interrupted ones", executed, n)
		}
		reliability.Record(t, reliability.Faults, fmt.Sprintf("SIGINT to `rfenv call --batch` of %d sleeping calls", n),
			fmt.Sprintf("exit 130 in %s, %d of %d lines reported as interrupted; the servers cancelled all %d calls (in flight → 0 within %s)", secs(exit), interrupted, n, n, secs(drained)),
			reliability.Calls(n, interrupted, executed, byShimStats))
	})
}

// TestE2EHardeningConcurrentProcesses runs 50 rfenv processes at once on one state directory: ups of
// distinct names, ups of one shared name, ups and downs racing on one name, calls, and downs. The
// state file is never torn, no entry is lost or duplicated, and every container is accounted for.
func TestE2EHardeningConcurrentProcesses(t *testing.T) {
	img := e2e.Image(t, "hostile")
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	id := state.StateID(dir)
	pe := newProcEnv(t, dir)
	c := newCLI(t, dir)
	prefix := uniqueName("hc")
	nm := func(kind string, i int) string { return fmt.Sprintf("%s-%s%d", prefix, kind, i) }

	// Before: one environment to call, and eight to take down.
	const nGone = 8
	var setup []*proc
	setup = append(setup, pe.start("", "up", img, "--name", nm("pre", 0)))
	for i := range nGone {
		setup = append(setup, pe.start("", "up", img, "--name", nm("gone", i)))
	}
	for _, p := range setup {
		if r := p.wait(t, 2*time.Minute); r.code != 0 {
			t.Fatalf("setup %v: exit %d: %s", p.args, r.code, r.stderr)
		}
	}

	calledBefore := served(t, c, nm("pre", 0))

	// The storm: 50 processes.
	type op struct {
		args []string
		kind string
	}
	var ops []op
	const nDistinct, nShared, nCalls = 16, 8, 12
	for i := range nDistinct {
		ops = append(ops, op{[]string{"up", img, "--name", nm("d", i), "--ready-timeout", "10m"}, "up-distinct"})
	}
	for range nShared {
		ops = append(ops, op{[]string{"up", img, "--name", nm("shared", 0), "--ready-timeout", "10m"}, "up-shared"})
	}
	for i := range 6 { // up, down, up, down, ... of one name
		if i%2 == 0 {
			ops = append(ops, op{[]string{"up", img, "--name", nm("mix", 0), "--ready-timeout", "10m"}, "mix"})
		} else {
			ops = append(ops, op{[]string{"down", nm("mix", 0)}, "mix"})
		}
	}
	for i := range nCalls {
		ops = append(ops, op{[]string{"call", nm("pre", 0), "echo", "--arg", fmt.Sprintf("value=%d", i)}, "call"})
	}
	for i := range nGone {
		ops = append(ops, op{[]string{"down", nm("gone", i)}, "down"})
	}
	if len(ops) != 50 {
		t.Fatalf("%d operations, want 50", len(ops))
	}

	// Read the state file all through the storm: it must always parse.
	stop := make(chan struct{})
	var reads, torn int
	var tornErr error
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		st, _ := state.Open(dir)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := st.Load(context.Background()); err != nil {
				torn++
				tornErr = err
			}
			reads++
			time.Sleep(2 * time.Millisecond)
		}
	}()

	start := time.Now()
	procs := make([]*proc, len(ops))
	for i, o := range ops {
		procs[i] = pe.start("", o.args...)
	}
	answered := 0
	for i, p := range procs {
		r := p.wait(t, 15*time.Minute) // 50 processes on a loaded 2-core machine
		if r.code != 0 {
			t.Errorf("rfenv %s: exit %d\nstderr: %s", strings.Join(ops[i].args, " "), r.code, r.stderr)
			continue
		}
		if ops[i].kind == "call" {
			if got, want := strings.TrimSpace(r.stdout), strings.TrimPrefix(ops[i].args[4], "value="); got != want {
				t.Errorf("call %v printed %q, want %s", ops[i].args, got, want)
			} else {
				answered++
			}
		}
	}
	storm := time.Since(start)
	close(stop)
	<-monitorDone
	if torn > 0 {
		t.Errorf("%d of %d reads of state.json failed during the storm; last: %v", torn, reads, tornErr)
	}

	// What the operations imply.
	want := map[string]bool{nm("pre", 0): true, nm("shared", 0): true}
	for i := range nDistinct {
		want[nm("d", i)] = true
	}
	ls := decodeJSON[[]envView](t, c.ok("ls", "--json").stdout)
	got := map[string]envView{}
	for _, e := range ls {
		if _, dup := got[e.Name]; dup {
			t.Errorf("ls lists %s twice", e.Name)
		}
		got[e.Name] = e
	}
	mixUp := false
	if _, ok := got[nm("mix", 0)]; ok {
		mixUp = true // the last of the racing up/downs of mix was an up
		want[nm("mix", 0)] = true
	}
	for name := range want {
		e, ok := got[name]
		switch {
		case !ok:
			t.Errorf("environment %s is missing from ls", name)
		case e.Replicas != 1 || e.Healthy == nil || *e.Healthy != 1:
			t.Errorf("environment %s: %d replica(s), healthy %v; want 1 healthy", name, e.Replicas, e.Healthy)
		}
	}
	for name := range got {
		if !want[name] {
			t.Errorf("ls lists %s, which the operations removed", name)
		}
	}
	// Containers: exactly those the state file records.
	f := readStateFile(t, dir)
	recorded := map[string]string{}
	for _, e := range f.Environments {
		for _, in := range e.Instances {
			recorded[in.ContainerID] = e.Name
		}
	}
	live := e2e.List(t, docker, id)
	for _, ct := range live {
		if _, ok := recorded[ct.ID]; !ok {
			t.Errorf("container %v (%s) is not in the state file", ct.Names, ct.State)
		}
	}
	if len(live) != len(recorded) || len(recorded) != len(want) {
		t.Errorf("%d containers run, the state file records %d, the operations imply %d", len(live), len(recorded), len(want))
	}
	assertNoPorts(t, docker, dir)
	executed := executedSince(t, c, nm("pre", 0), calledBefore)

	c.ok("down", "--all")
	if n := len(e2e.List(t, docker, id)); n != 0 {
		t.Errorf("%d container(s) left after down --all", n)
	}
	if t.Failed() {
		return
	}
	reliability.Record(t, reliability.Concurrency,
		"50 rfenv processes at once on one state dir: 16 ups of distinct names, 8 ups of one name, 3 ups and 3 downs racing on one name, 12 calls, 8 downs",
		fmt.Sprintf("all 50 exited 0 in %s; state.json read %d times during the storm and always parsed; `ls` then listed exactly the %d environments the operations imply (the racing name ended %s), one replica each, and the %d running containers are exactly those recorded",
			secs(storm), reads, len(want), map[bool]string{true: "up", false: "down"}[mixUp], len(live)),
		reliability.Calls(nCalls, answered, executed, byShimStats))
}

// TestE2EHardeningReplicaLoss kills the container of a replica that is running a call, and removes
// another behind rfenv's back: the broken call says what happened to its replica, calls go on on the
// survivor, stats say which replicas are down and why, and `up` heals both.
func TestE2EHardeningReplicaLoss(t *testing.T) {
	img := e2e.Image(t, "hostile")
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	pe := newProcEnv(t, dir)
	name := uniqueName("hloss")
	up := decodeJSON[envView](t, c.ok("up", img, "--name", name, "--replicas", "3", "--json").stdout)
	assertNoPorts(t, docker, dir)

	// Kill the replica that runs a long call.
	p := pe.start("", "call", name, "sleep", "--arg", "seconds=30", "--timeout", "2m")
	busy := -1
	e2e.Eventually(t, 30*time.Second, "the call to reach a replica", func() bool {
		for _, in := range decodeJSON[pool.Stats](t, c.ok("stats", name, "--json").stdout).Instances {
			if in.InFlight == 1 {
				busy = in.Index
			}
		}
		return busy >= 0 || p.exited()
	})
	killed, removed := busy, (busy+1)%3
	survivor := 3 - killed - removed
	killedAt := time.Now()
	dockerCLI(t, "kill", up.Instances[killed].ID)
	r := p.wait(t, 30*time.Second)
	brokenTook := time.Since(killedAt)
	if r.code != ExitInfra || !strings.Contains(r.stderr, "failed after the request was sent") || !strings.Contains(r.stderr, "exit code 137: killed by SIGKILL") {
		t.Errorf("the broken call: exit %d, want 4 saying the replica's container was killed\nstderr: %s", r.code, r.stderr)
	}
	_, brokenWhy, _ := strings.Cut(strings.TrimSpace(r.stderr), "\n")
	dockerCLI(t, "rm", "-f", up.Instances[removed].ID)
	brokenAnswered := 0
	if r.code == ExitInfra && strings.Contains(r.stderr, "killed by SIGKILL") {
		brokenAnswered = 1
	}
	before := served(t, c, name)

	// One process, one pool: the first call that picks a dead replica fails over, then it is skipped.
	var in strings.Builder
	const n = 30
	for i := range n {
		fmt.Fprintf(&in, "{\"value\": %d}\n", i)
	}
	c.stdin = in.String()
	start := time.Now()
	r = c.ok("call", name, "echo", "--batch", "-", "--concurrency", "4")
	batchTook := time.Since(start)
	c.stdin = ""
	answered := 0
	for i, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if line := decodeJSON[batch.Line](t, l); line.Error != nil || string(line.Result) != fmt.Sprint(i) {
			t.Fatalf("line %d = %s", i, l)
		}
		answered++
	}
	// Separate processes too: each call succeeds, whichever replica it tries first (one that tries a
	// dead replica first pays for a failed connection).
	var slowest time.Duration
	for i := range 3 {
		r := c.ok("call", name, "replica")
		if got := strings.TrimSpace(r.stdout); got != fmt.Sprintf(`"%d"`, survivor) {
			t.Errorf("call %d ran on replica %s, want the survivor %d", i, got, survivor)
		} else {
			answered++
		}
		slowest = max(slowest, r.elapsed)
	}
	executed := executedSince(t, c, name, before)
	st := decodeJSON[pool.Stats](t, c.ok("stats", name, "--json").stdout)
	if st.HealthyInstances != 1 {
		t.Errorf("stats: %d healthy, want 1", st.HealthyInstances)
	}
	for i, want := range map[int]string{killed: "exit code 137: killed by SIGKILL", removed: "is gone from localhost (removed outside rfenv)"} {
		in := st.Instances[i]
		if in.Healthy || !strings.Contains(in.Error, want) {
			t.Errorf("stats of dead replica %d: healthy %v, error %q; want unhealthy, saying %q", in.Index, in.Healthy, in.Error, want)
		}
	}

	// up heals: the survivor is kept, the two others replaced.
	start = time.Now()
	healed := decodeJSON[envView](t, c.ok("up", img, "--name", name, "--replicas", "3", "--json").stdout)
	healTook := time.Since(start)
	if healed.Instances[survivor].ID != up.Instances[survivor].ID {
		t.Error("up replaced the healthy replica")
	}
	for _, i := range []int{killed, removed} {
		if healed.Instances[i].ID == up.Instances[i].ID {
			t.Errorf("up kept dead replica %d", i)
		}
	}
	if st := decodeJSON[pool.Stats](t, c.ok("stats", name, "--json").stdout); st.HealthyInstances != 3 {
		t.Errorf("after up: %d healthy, want 3", st.HealthyInstances)
	}
	assertAccounted(t, docker, dir, name)
	assertNoPorts(t, docker, dir)
	if n := len(e2e.List(t, docker, state.StateID(dir))); n != 3 {
		t.Errorf("%d containers after healing, want 3", n)
	}
	reliability.Record(t, reliability.Faults, "the container of a replica running a call killed (`docker kill`)",
		fmt.Sprintf("the call exits 4 %s after the kill: the request was sent, so it is not retried, and Docker says why: %q", secs(brokenTook), firstLine(brokenWhy)),
		reliability.Calls(1, brokenAnswered, 0, byShimStats).WithUncounted(1))
	reliability.Record(t, reliability.Faults, "then another of the 3 replicas removed behind rfenv's back (`docker rm -f`)",
		fmt.Sprintf("a 30-call batch (%s) and 3 separate calls (slowest %s) all succeeded on the survivor; `stats` marks the two unhealthy and says why (\"exit code 137: killed by SIGKILL\", \"gone ... (removed outside rfenv)\"); `up` kept the survivor and replaced both in %s", secs(batchTook), secs(slowest), secs(healTook)),
		reliability.Calls(n+3, answered, executed, byShimStats))
}

// TestE2EHardeningOutOfMemory: a method that allocates past --memory gets its replica OOM-killed. The
// call fails with a message that says so, the pool goes on with the other replica, and the killed one
// comes back (restart policy) or is replaced by `up`.
func TestE2EHardeningOutOfMemory(t *testing.T) {
	img := e2e.Image(t, "hostile")
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	name := uniqueName("hoom")
	c.ok("up", img, "--name", name, "--replicas", "2", "--memory", "64m")
	assertNoPorts(t, docker, dir)

	before := served(t, c, name)
	r := c.fails(ExitInfra, "call", name, "hog", "--arg", "mb=200", "--timeout", "60s")
	if !strings.Contains(r.stderr, "killed for running out of memory") || !strings.Contains(r.stderr, "64MiB") || !strings.Contains(r.stderr, "--memory") {
		t.Errorf("the error should say the replica ran out of its 64 MiB; stderr: %s", r.stderr)
	}
	// The pool goes on: every call succeeds, on the other replica or on the restarted one.
	answered := 1 // the hog call: exit 4 saying why (checked above)
	for i := range 10 {
		if got := strings.TrimSpace(c.ok("call", name, "echo", "--arg", fmt.Sprintf("value=%d", i)).stdout); got != fmt.Sprint(i) {
			t.Errorf("echo after the OOM = %s", got)
		} else {
			answered++
		}
	}
	// The killed server's count of the hog call died with it; the restarted one counts from zero.
	executed := executedSince(t, c, name, before)
	// The restart policy brings the killed replica back; up keeps both (or heals whatever is dead).
	start := time.Now()
	c.ok("up", img, "--name", name, "--replicas", "2", "--memory", "64m")
	healTook := time.Since(start)
	e2e.Eventually(t, 30*time.Second, "both replicas healthy", func() bool {
		return decodeJSON[pool.Stats](t, c.ok("stats", name, "--json").stdout).HealthyInstances == 2
	})
	assertAccounted(t, docker, dir, name)
	assertNoPorts(t, docker, dir)
	_, why, _ := strings.Cut(strings.TrimSpace(r.stderr), "\n")
	reliability.Record(t, reliability.Faults, "a method allocates 200 MiB in a replica started with `--memory 64m` (OOM kill)",
		fmt.Sprintf("exit 4: %q, then, from Docker, %q; the next 10 calls succeeded; `up` (%s) left 2 of 2 healthy", firstLine(r.stderr), firstLine(why), secs(healTook)),
		reliability.Calls(11, answered, executed, byShimStats).WithUncounted(1))
}

// TestE2EHardeningCorruptStateFile: a truncated and a garbage state file make every command fail with
// exit 4, naming the file and how to recover; the file is never rewritten; the recovery it suggests
// (move it aside, `down --orphans`) removes the containers it tracked.
func TestE2EHardeningCorruptStateFile(t *testing.T) {
	img := e2e.Image(t, "hostile")
	docker := e2e.Docker(t)
	for _, tc := range []struct {
		name    string
		corrupt func(good []byte) []byte
	}{
		{"truncated", func(good []byte) []byte { return good[:len(good)/2] }},
		{"garbage", func([]byte) []byte { return []byte("\x00\x01not json at all\xff{{{") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := e2e.StateDir(t)
			c := newCLI(t, dir)
			name := uniqueName("hcorrupt")
			c.ok("up", img, "--name", name, "--replicas", "2")
			assertNoPorts(t, docker, dir)
			path := stateFile(dir)
			before := served(t, c, name)
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			bad := tc.corrupt(good)
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			answered := 0
			for _, args := range [][]string{
				{"ls"}, {"call", name, "echo", "--arg", "value=1"}, {"stats", name},
				{"up", img, "--name", name, "--replicas", "2"}, {"up", img, "--name", uniqueName("hother")},
				{"down", name}, {"down", "--all"}, {"down", "--orphans"},
			} {
				r := c.fails(ExitInfra, args...)
				if !strings.Contains(r.stderr, path) || !strings.Contains(r.stderr, "corrupt") || !strings.Contains(r.stderr, "mv ") || !strings.Contains(r.stderr, "down --orphans") {
					t.Errorf("rfenv %s: the error should name %s and how to recover; stderr: %s", strings.Join(args, " "), path, r.stderr)
				}
				if now, _ := os.ReadFile(path); string(now) != string(bad) {
					t.Fatalf("rfenv %s rewrote the corrupt state file", strings.Join(args, " "))
				}
				if args[0] == "call" && r.code == ExitInfra {
					answered++
				}
			}
			// Ask the replicas (with the good file back for a moment) whether the call reached one.
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			executed := executedSince(t, c, name, before)
			if executed != 0 {
				t.Errorf("the replicas counted %d calls; the call should have stopped at the state file", executed)
			}
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			if n := len(e2e.List(t, docker, state.StateID(dir))); n != 2 {
				t.Errorf("%d containers after the failed commands, want the 2 untouched", n)
			}
			// The recovery the message gives.
			if err := os.Rename(path, path+".bad"); err != nil {
				t.Fatal(err)
			}
			orph := decodeJSON[struct {
				Orphans []struct{ Name string } `json:"orphans"`
			}](t, c.ok("down", "--orphans", "--json").stdout)
			if len(orph.Orphans) != 2 {
				t.Errorf("down --orphans removed %+v, want the 2 replicas", orph.Orphans)
			}
			if n := len(e2e.List(t, docker, state.StateID(dir))); n != 0 {
				t.Errorf("%d containers left after the recovery", n)
			}
			reliability.Record(t, reliability.Faults, "state.json "+tc.name+" (while an environment of 2 replicas runs)",
				"ls, call, stats, up, down, down --all and down --orphans all exit 4 naming the file, the parse error and the recovery (mv it aside, `rfenv down --orphans`); the file is left byte-for-byte untouched and the replicas run on (the call never reached them); following the recovery removes both replicas",
				reliability.Calls(1, answered, executed, byShimStats))
		})
	}
}

// TestE2EHardeningOrphans: `down --orphans` removes labelled containers that no state entry owns (here:
// an entry deleted from state.json by hand), keeps those of known environments, and never touches an
// unlabelled container, nor one of another state directory.
func TestE2EHardeningOrphans(t *testing.T) {
	img := e2e.Image(t, "hostile")
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	id := state.StateID(dir)
	c := newCLI(t, dir)
	keep, lose := uniqueName("hkeep"), uniqueName("hlose")
	c.ok("up", img, "--name", keep, "--replicas", "2")
	lost := decodeJSON[envView](t, c.ok("up", img, "--name", lose, "--replicas", "2", "--json").stdout)

	// Another state directory's environment, and a container rfenv never started.
	otherDir := e2e.StateDir(t)
	other := newCLI(t, otherDir)
	otherName := uniqueName("hother")
	other.ok("up", img, "--name", otherName)
	stranger := uniqueName("hstranger")
	dockerCLI(t, "run", "-d", "--name", stranger, "--label", "purpose=rfenv-hardening-test", "rfenv-python:bookworm", "sleep", "300")
	t.Cleanup(func() { dockerCLI(t, "rm", "-f", stranger) })
	assertNoPorts(t, docker, dir)
	assertNoPorts(t, docker, otherDir)

	// Delete lose's entry by hand, as a user editing the file would.
	raw, err := os.ReadFile(stateFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc["environments"].(map[string]any), lose)
	edited, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(stateFile(dir), edited, 0o600); err != nil {
		t.Fatal(err)
	}

	before := served(t, c, keep)
	r := c.ok("down", "--orphans", "--json")
	rep := decodeJSON[struct {
		Orphans []struct{ Name, Env, ID string } `json:"orphans"`
	}](t, r.stdout)
	var removed []string
	for _, o := range rep.Orphans {
		removed = append(removed, o.Name)
		if o.Env != lose {
			t.Errorf("down --orphans removed %s of environment %s", o.Name, o.Env)
		}
	}
	slices.Sort(removed)
	if want := []string{lose + "-0", lose + "-1"}; !slices.Equal(removed, want) {
		t.Errorf("down --orphans removed %v, want %v", removed, want)
	}
	for _, in := range lost.Instances {
		if _, err := docker.ContainerInspect(context.Background(), in.ID, client.ContainerInspectOptions{}); err == nil {
			t.Errorf("orphan %s still exists", in.Container)
		}
	}
	if n := len(e2e.List(t, docker, id)); n != 2 {
		t.Errorf("%d containers of this state dir left, want %s's 2", n, keep)
	}
	answered := 0
	if got := strings.TrimSpace(c.ok("call", keep, "echo", "--arg", "value=7").stdout); got != "7" {
		t.Errorf("the owned environment stopped answering: %s", got)
	} else {
		answered++
	}
	executed := executedSince(t, c, keep, before)
	if s := dockerCLI(t, "inspect", "-f", "{{.State.Running}}", stranger); s != "true" {
		t.Errorf("the unlabelled container %s was touched: running=%s", stranger, s)
	}
	if n := len(e2e.List(t, docker, state.StateID(otherDir))); n != 1 {
		t.Errorf("another state dir's container was touched: %d left, want 1", n)
	}
	// Twice is a no-op.
	if again := decodeJSON[struct {
		Orphans []any `json:"orphans"`
	}](t, c.ok("down", "--orphans", "--json").stdout); len(again.Orphans) != 0 {
		t.Errorf("a second down --orphans removed %v", again.Orphans)
	}
	reliability.Record(t, reliability.Faults, "an environment's entry deleted from state.json by hand (its 2 containers orphaned), beside an unlabelled container and another state dir's environment",
		"`down --orphans` removed exactly the 2 orphans; the known environment kept answering; the unlabelled container and the other state dir's container were not touched; a second run removed nothing",
		reliability.Calls(1, answered, executed, byShimStats))
}
