package rfenv_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/batch"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

func upActor(t *testing.T, name string, replicas int, opts ...rfenv.UpOption) (*rfenv.Client, *rfenv.Env, string) {
	t.Helper()
	dir := e2e.StateDir(t)
	c, err := rfenv.New(rfenv.WithStateDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	env, err := c.Up(context.Background(), e2e.Image(t, "actor"), append([]rfenv.UpOption{rfenv.WithName(name), rfenv.WithReplicas(replicas), rfenv.WithReadyTimeout(10 * time.Minute)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Release)
	return c, env, dir
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// timedCaller records how long each call took, to check that none outlived its deadline.
type timedCaller struct {
	*pool.Pool
	mu        sync.Mutex
	longest   time.Duration
	completed atomic.Int64
}

func (c *timedCaller) CallEncoded(ctx context.Context, method string, body []byte) (json.RawMessage, error) {
	start := time.Now()
	res, err := c.Pool.CallEncoded(ctx, method, body)
	c.completed.Add(1)
	d := time.Since(start)
	c.mu.Lock()
	c.longest = max(c.longest, d)
	c.mu.Unlock()
	return res, err
}

// recordedIn returns the call ids logged in files.
func recordedIn(t *testing.T, files []string) map[int]bool {
	t.Helper()
	ids := map[int]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Fields(string(b)) {
			if id, err := strconv.Atoi(l); err == nil {
				ids[id] = true
			}
		}
	}
	return ids
}

// countRecorded reads the call ids the replicas really ran from their logs in the shared volume.
func countRecorded(t *testing.T, dataDir string) map[int]int {
	t.Helper()
	counts := map[int]int{}
	files, _ := filepath.Glob(filepath.Join(dataDir, "*.log"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			id, err := strconv.Atoi(sc.Text())
			if err == nil {
				counts[id]++
			}
		}
		fh.Close()
	}
	return counts
}

// TestE2EKillReplicaMidBatch kills one of three replicas in the middle of a 2,000-call batch: every
// line gets an answer, no call runs twice, and no call waits longer than its deadline.
func TestE2EKillReplicaMidBatch(t *testing.T) {
	dataDir := t.TempDir()
	_, env, _ := upActor(t, e2e.Name("lib-killme"), 3, rfenv.WithUpOptions(rfenv.UpOptions{
		Name: e2e.Name("lib-killme"), Replicas: 3, Volumes: []string{dataDir + ":/data"}, ReadyTimeout: 10 * time.Minute,
	}))
	const n = 2000
	var in bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "{\"call_id\": %d}\n", i)
	}
	victim := env.Record().Instances[1]
	var killed atomic.Bool
	var killErr error
	var afterKill int64 = -1 // calls completed when docker kill had returned
	var victimLogs []string
	caller := &timedCaller{Pool: env.Pool()}
	opts := batch.Options{Method: "record", Concurrency: 16, Timeout: 5 * time.Second,
		Progress: func(done, failed int) {
			if done >= n/4 && killed.CompareAndSwap(false, true) {
				// Synchronously: the kill has landed before the point recorded, so every call
				// started after it provably ran with the replica dead.
				killErr = exec.Command("docker", "kill", victim.ContainerID).Run()
				afterKill = caller.completed.Load()
				// The killed process's logs; a restarted one writes a file of its own.
				victimLogs, _ = filepath.Glob(filepath.Join(dataDir, strconv.Itoa(victim.Index)+"-*.log"))
			}
		}}
	var out bytes.Buffer
	sum, err := batch.Run(context.Background(), caller, &in, &out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !killed.Load() || killErr != nil {
		t.Fatalf("the replica was not killed (killed=%v): %v", killed.Load(), killErr)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != n || sum.Total != n {
		t.Fatalf("%d output lines (summary %d), want %d", len(lines), sum.Total, n)
	}
	recorded := countRecorded(t, dataDir)
	failedIDs := 0
	for i, l := range lines {
		var line batch.Line
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatal(err)
		}
		if line.Index != i {
			t.Fatalf("line %d has index %d: output out of order", i, line.Index)
		}
		switch {
		case line.Error == nil && recorded[i] != 1:
			t.Errorf("call %d succeeded but ran %d times", i, recorded[i])
		case line.Error != nil:
			failedIDs++
			if recorded[i] > 1 {
				t.Errorf("failed call %d ran %d times", i, recorded[i])
			}
		}
	}
	for id, k := range recorded {
		if k > 1 {
			t.Errorf("call %d ran %d times", id, k)
		}
	}
	// A call with index i starts only once i-Concurrency calls have completed, so the calls from
	// afterKill+Concurrency on all started after the kill: they must all have succeeded, on the
	// replicas still alive.
	firstAfter := int(afterKill) + opts.Concurrency
	if firstAfter >= n-100 {
		t.Fatalf("the kill landed after call %d of %d: too late to show the batch going on", firstAfter, n)
	}
	for i := firstAfter; i < n; i++ {
		var line batch.Line
		json.Unmarshal([]byte(lines[i]), &line)
		if line.Error != nil {
			t.Errorf("call %d, started after the kill, failed: %v", i, line.Error.Message)
		}
	}
	if len(victimLogs) == 0 {
		t.Fatal("the killed replica had run no call before the kill")
	}
	for id := range recordedIn(t, victimLogs) {
		if id >= firstAfter {
			t.Errorf("call %d, started after the kill, ran on the killed replica", id)
		}
	}
	if caller.longest > opts.Timeout+time.Second {
		t.Errorf("a call waited %s, past its %s deadline", caller.longest, opts.Timeout)
	}
	// Only calls in flight on the victim at the moment of the kill may fail.
	if failedIDs > opts.Concurrency {
		t.Errorf("%d calls failed; at most the %d in flight on the killed replica should", failedIDs, opts.Concurrency)
	}
	t.Logf("2000 calls, %d failed (in flight on the killed replica), longest call %s", failedIDs, caller.longest)
}

// TestE2EStoppedReplica: a replica whose server stops answering (SIGSTOP) leaves rotation; calls
// finish on the others; it rejoins after SIGCONT.
func TestE2EStoppedReplica(t *testing.T) {
	_, env, _ := upActor(t, e2e.Name("lib-stopme"), 3)
	ctx := context.Background()
	victim := env.Record().Instances[0]
	// The server runs under docker-init (PID 1 in the container): stop the server itself.
	initPid := docker(t, "inspect", "-f", "{{.State.Pid}}", victim.ContainerID)
	out, err := exec.Command("pgrep", "-P", initPid).Output()
	if err != nil {
		t.Fatalf("no server process under docker-init %s: %v", initPid, err)
	}
	server, _ := strconv.Atoi(strings.Fields(string(out))[0])
	signal := func(sig syscall.Signal) {
		if err := syscall.Kill(server, sig); err != nil {
			t.Fatalf("kill -%v %d: %v", sig, server, err)
		}
	}
	signal(syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			syscall.Kill(server, syscall.SIGCONT)
		}
	}()
	failures := 0
	for i := 0; i < 60; i++ {
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := env.Call(cctx, "add", map[string]int{"a": i})
		cancel()
		if err != nil {
			failures++
		}
	}
	// The first calls routed to the stopped replica time out; once suspected, it gets no more.
	if failures > 3 {
		t.Errorf("%d of 60 calls failed; the stopped replica should leave rotation after its first miss", failures)
	}
	e2e.Eventually(t, 5*time.Second, "the stopped replica to be marked unhealthy", func() bool {
		for _, h := range env.Stats(ctx).Instances {
			if h.Index == victim.Index {
				return !h.Healthy
			}
		}
		return false
	})
	signal(syscall.SIGCONT)
	stopped = false
	e2e.Eventually(t, 10*time.Second, "the replica to rejoin after SIGCONT", func() bool {
		got := map[string]bool{}
		for i := 0; i < 30; i++ {
			var r string
			if err := env.CallInto(ctx, "replica", nil, &r); err == nil {
				got[r] = true
			}
		}
		return got[strconv.Itoa(victim.Index)]
	})
}

// TestE2ESyncDeadlineBusy: a sync method past its deadline keeps running in its thread; its replica
// is reported busy and gets no calls until the method returns. The method blocks on a gate the test
// opens, so how long the busy state lasts depends on no clock.
func TestE2ESyncDeadlineBusy(t *testing.T) {
	_, env, _ := upActor(t, e2e.Name("lib-busy"), 2)
	ctx := context.Background()
	gate := e2e.Name("busy")
	busyIdx := -1
	findBusy := func() bool {
		for _, in := range env.Stats(ctx).Instances {
			if in.Status == "busy" && in.Overdue == 1 {
				busyIdx = in.Index
				return true
			}
		}
		return false
	}
	// The shim never starts a sync call whose deadline passed while it queued, so on a loaded
	// machine the first try may not start the method at all: try again with a longer deadline.
	for deadline := time.Second; busyIdx < 0; deadline *= 2 {
		if deadline > time.Minute {
			t.Fatal("the sync method never started before its deadline")
		}
		cctx, cancel := context.WithTimeout(ctx, deadline)
		_, err := env.Call(cctx, "block_sync", map[string]string{"gate": gate})
		cancel()
		if !errors.Is(err, errs.Deadline) {
			t.Fatalf("block_sync past its deadline: %v", err)
		}
		waitUntil(t, 10*time.Second, findBusy)
	}
	// While busy, every call goes to the other replica.
	for i := 0; i < 20; i++ {
		var r string
		if err := env.CallInto(ctx, "replica", nil, &r); err != nil {
			t.Fatal(err)
		}
		if r == strconv.Itoa(busyIdx) {
			t.Fatalf("call %d went to the busy replica %d", i, busyIdx)
		}
	}
	docker(t, "exec", env.Record().Instances[busyIdx].ContainerID, "touch", "/tmp/gate-"+gate)
	e2e.Eventually(t, time.Minute, "the busy replica to recover", func() bool {
		for _, in := range env.Stats(ctx).Instances {
			if in.Index == busyIdx {
				return in.Healthy && in.Overdue == 0
			}
		}
		return false
	})
}

// waitUntil polls cond until it holds or timeout passes, and says which.
func waitUntil(t *testing.T, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// TestE2EHealAndScale: up replaces a dead replica and keeps the others; scaling 3 → 5 → 2 keeps the
// replicas that stay.
func TestE2EHealAndScale(t *testing.T) {
	c, env, dir := upActor(t, e2e.Name("lib-heal"), 3)
	ctx := context.Background()
	tag := e2e.Image(t, "actor")
	before := env.Record().Instances
	docker(t, "rm", "-f", before[1].ContainerID)
	env2, err := c.Up(ctx, tag, rfenv.WithName(e2e.Name("lib-heal")), rfenv.WithReplicas(3))
	if err != nil {
		t.Fatal(err)
	}
	after := env2.Record().Instances
	if after[0].ContainerID != before[0].ContainerID || after[2].ContainerID != before[2].ContainerID {
		t.Error("healing replaced healthy replicas")
	}
	if after[1].ContainerID == before[1].ContainerID {
		t.Error("healing did not replace the dead replica")
	}
	if st := env2.Stats(ctx); st.HealthyInstances != 3 {
		t.Errorf("after heal: %d healthy", st.HealthyInstances)
	}
	env5, err := c.Up(ctx, tag, rfenv.WithName(e2e.Name("lib-heal")), rfenv.WithReplicas(5))
	if err != nil {
		t.Fatal(err)
	}
	five := env5.Record().Instances
	if len(five) != 5 {
		t.Fatalf("scaled to %d, want 5", len(five))
	}
	for i := 0; i < 3; i++ {
		if five[i].ContainerID != after[i].ContainerID {
			t.Errorf("scaling up replaced replica %d", i)
		}
	}
	env2r, err := c.Up(ctx, tag, rfenv.WithName(e2e.Name("lib-heal")), rfenv.WithReplicas(2))
	if err != nil {
		t.Fatal(err)
	}
	two := env2r.Record().Instances
	if len(two) != 2 || two[0].ContainerID != five[0].ContainerID || two[1].ContainerID != five[1].ContainerID {
		t.Errorf("scaling down to 2: %+v", two)
	}
	if n := len(e2e.List(t, e2e.Docker(t), state.StateID(dir))); n != 2 {
		t.Errorf("%d containers after scaling down to 2", n)
	}
}

// TestE2EBalancing: round_robin splits 3,000 calls exactly; least_busy routes around a slow replica.
func TestE2EBalancing(t *testing.T) {
	_, env, _ := upActor(t, e2e.Name("lib-rr"), 3, rfenv.WithBalancer(pool.RoundRobin))
	ctx := context.Background()
	const n = 3000
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := env.Call(ctx, "add", map[string]int{"a": i}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, in := range env.Stats(ctx).Instances {
		if in.Requests != n/3 {
			t.Errorf("round_robin: replica %d served %d of %d, want exactly %d", in.Index, in.Requests, n, n/3)
		}
	}

	_, lb, _ := upActor(t, e2e.Name("lib-lb"), 3, rfenv.WithBalancer(pool.LeastBusy))
	counts := map[string]int{}
	var mu sync.Mutex
	work = make(chan int)
	for w := 0; w < 12; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				var r string
				if err := lb.CallInto(ctx, "slow_on", map[string]any{"replica": "0", "seconds": 0.1}, &r); err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				counts[r]++
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < 600; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if counts["0"]*6 > 600 {
		t.Errorf("least_busy sent %d of 600 calls to the slow replica (want well under a third): %v", counts["0"], counts)
	}
	t.Logf("least_busy split: %v", counts)
}
