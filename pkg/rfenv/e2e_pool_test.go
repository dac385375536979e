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
	env, err := c.Up(context.Background(), e2e.Image(t, "actor"), append([]rfenv.UpOption{rfenv.WithName(name), rfenv.WithReplicas(replicas)}, opts...)...)
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
	mu      sync.Mutex
	longest time.Duration
}

func (c *timedCaller) CallEncoded(ctx context.Context, method string, body []byte) (json.RawMessage, error) {
	start := time.Now()
	res, err := c.Pool.CallEncoded(ctx, method, body)
	d := time.Since(start)
	c.mu.Lock()
	c.longest = max(c.longest, d)
	c.mu.Unlock()
	return res, err
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
	_, env, _ := upActor(t, "lib-killme", 3, rfenv.WithUpOptions(rfenv.UpOptions{
		Name: "lib-killme", Replicas: 3, Volumes: []string{dataDir + ":/data"},
	}))
	const n = 2000
	var in bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "{\"call_id\": %d}\n", i)
	}
	victim := env.Record().Instances[1].ContainerID
	var killed atomic.Bool
	caller := &timedCaller{Pool: env.Pool()}
	opts := batch.Options{Method: "record", Concurrency: 16, Timeout: 5 * time.Second,
		Progress: func(done, failed int) {
			if done >= n/4 && killed.CompareAndSwap(false, true) {
				go exec.Command("docker", "kill", victim).Run()
			}
		}}
	var out bytes.Buffer
	sum, err := batch.Run(context.Background(), caller, &in, &out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !killed.Load() {
		t.Fatal("the replica was never killed")
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
	_, env, _ := upActor(t, "lib-stopme", 3)
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
// is reported busy and gets no calls until the method returns.
func TestE2ESyncDeadlineBusy(t *testing.T) {
	_, env, _ := upActor(t, "lib-busy", 2)
	ctx := context.Background()
	// The deadline leaves a loaded machine time to start the method: the shim never starts a sync
	// call whose deadline passed while it queued.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := env.Call(cctx, "sleep_sync", map[string]float64{"seconds": 9})
	cancel()
	if !errors.Is(err, errs.Deadline) {
		t.Fatalf("sleep_sync past deadline: %v", err)
	}
	var busyIdx = -1
	e2e.Eventually(t, 5*time.Second, "a busy replica in stats", func() bool {
		for _, in := range env.Stats(ctx).Instances {
			if in.Status == "busy" && in.Overdue == 1 {
				busyIdx = in.Index
				return true
			}
		}
		return false
	})
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
	e2e.Eventually(t, 15*time.Second, "the busy replica to recover", func() bool {
		for _, in := range env.Stats(ctx).Instances {
			if in.Index == busyIdx {
				return in.Healthy && in.Overdue == 0
			}
		}
		return false
	})
}

// TestE2EHealAndScale: up replaces a dead replica and keeps the others; scaling 3 → 5 → 2 keeps the
// replicas that stay.
func TestE2EHealAndScale(t *testing.T) {
	c, env, dir := upActor(t, "lib-heal", 3)
	ctx := context.Background()
	tag := e2e.Image(t, "actor")
	before := env.Record().Instances
	docker(t, "rm", "-f", before[1].ContainerID)
	env2, err := c.Up(ctx, tag, rfenv.WithName("lib-heal"), rfenv.WithReplicas(3))
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
	env5, err := c.Up(ctx, tag, rfenv.WithName("lib-heal"), rfenv.WithReplicas(5))
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
	env2r, err := c.Up(ctx, tag, rfenv.WithName("lib-heal"), rfenv.WithReplicas(2))
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
	_, env, _ := upActor(t, "lib-rr", 3, rfenv.WithBalancer(pool.RoundRobin))
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

	_, lb, _ := upActor(t, "lib-lb", 3, rfenv.WithBalancer(pool.LeastBusy))
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
