package main

// Helpers of the items of issues 13 and 14 (items 12 to 16): the test fixtures they run
// (testdata/envs/episodic and actor), environments with their own up options, peak RSS of child
// processes, and the child mode the library burst runs in (so that its memory is its own).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/rfenv/rfenv/pkg/build"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// testImage builds the fixture testdata/envs/NAME once per run and returns its tag.
func (h *harness) testImage(ctx context.Context, name string) (string, error) {
	tag := "rfenv-bench-" + name + ":latest"
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.images[tag]; ok {
		return tag, nil
	}
	res, err := h.client.Build(ctx, nil, build.Options{
		Dir: filepath.Join(h.cfg.root, "testdata", "envs", name), Tag: tag, BaseImage: h.cfg.baseImage, ProgressMode: "quiet",
	})
	if err != nil {
		return "", fmt.Errorf("build testdata/envs/%s: %w", name, err)
	}
	h.images[tag] = res[0].Result
	return tag, nil
}

// upWith brings up (once per run, under key) an environment of fixture testdata/envs/NAME with o.
func (h *harness) upWith(ctx context.Context, key, fixture string, o rfenv.UpOptions) (*rfenv.Env, error) {
	tag, err := h.testImage(ctx, fixture)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.envs[key]; ok {
		return e, nil
	}
	o.Name = h.name(key)
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 5 * time.Minute
	}
	e, err := h.client.Up(ctx, tag, rfenv.WithUpOptions(o))
	if err != nil {
		return nil, fmt.Errorf("up %s: %w", key, err)
	}
	h.envs[key] = e
	return e, nil
}

// maxRSS is a finished child's peak resident set (wait4's ru_maxrss, KiB on Linux), in bytes.
func maxRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kib(b float64) string {
	return fmt.Sprintf("%.1f KiB", b/1024)
}

// peaks asks each replica of env (a testdata/envs/episodic one) how many `hold` calls it ran at once.
func peaks(ctx context.Context, env *rfenv.Env) ([]int, error) {
	body, err := env.Pool().Encode(pool.Request{Method: "peak"})
	if err != nil {
		return nil, err
	}
	var out []int
	for _, in := range env.Record().Instances {
		res, err := env.Pool().CallPinned(ctx, in.Index, "", "peak", body)
		if err != nil {
			return nil, err
		}
		var n int
		if err := json.Unmarshal(res, &n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// childEnv selects the child mode: the bench binary re-executed to run one library burst in a
// process of its own, so that its peak RSS is the library's alone (not the harness's).
const childEnv = "RFENV_BENCH_CHILD"

// childResult is what a child prints on stdout.
type childResult struct {
	Calls    int    `json:"calls"`
	Failures int    `json:"failures"`
	FirstErr string `json:"first_error,omitempty"`
	WallNs   int64  `json:"wall_ns"`
	// CPUNs is the process's user + system CPU time, filled in by the parent from wait4.
	CPUNs int64 `json:"-"`
}

func init() {
	if os.Getenv(childEnv) != "burst" {
		return
	}
	res, err := childBurst()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(res)
	os.Exit(0)
}

// childBurst makes RFENV_BENCH_CALLS calls of hold(RFENV_BENCH_SECONDS) at once, one goroutine each,
// on environment RFENV_BENCH_ENV of state directory RFENV_BENCH_STATE.
func childBurst() (childResult, error) {
	calls, _ := strconv.Atoi(os.Getenv("RFENV_BENCH_CALLS"))
	secs, _ := strconv.ParseFloat(os.Getenv("RFENV_BENCH_SECONDS"), 64)
	ctx := context.Background()
	c, err := rfenv.New(rfenv.WithStateDir(os.Getenv("RFENV_BENCH_STATE")))
	if err != nil {
		return childResult{}, err
	}
	defer c.Close()
	env, err := c.Get(ctx, os.Getenv("RFENV_BENCH_ENV"))
	if err != nil {
		return childResult{}, err
	}
	defer env.Release()
	res := childResult{Calls: calls}
	errc := make(chan error, calls)
	start := make(chan struct{})
	kw := map[string]float64{"seconds": secs}
	for i := 0; i < calls; i++ {
		go func() {
			<-start
			cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			defer cancel()
			_, err := env.Call(cctx, "hold", kw)
			errc <- err
		}()
	}
	t0 := time.Now()
	close(start)
	for i := 0; i < calls; i++ {
		if err := <-errc; err != nil {
			res.Failures++
			if res.FirstErr == "" {
				res.FirstErr = err.Error()
			}
		}
	}
	res.WallNs = int64(time.Since(t0))
	return res, nil
}

// runChild runs one library burst in a child process and returns its result and peak RSS.
func (h *harness) runChild(ctx context.Context, env *rfenv.Env, calls int, secs float64) (childResult, int64, error) {
	self, err := os.Executable()
	if err != nil {
		return childResult{}, 0, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), childEnv+"=burst", "RFENV_BENCH_STATE="+h.stateDir, "RFENV_BENCH_ENV="+env.Name(),
		"RFENV_BENCH_CALLS="+strconv.Itoa(calls), "RFENV_BENCH_SECONDS="+strconv.FormatFloat(secs, 'f', -1, 64))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return childResult{}, 0, fmt.Errorf("library burst child: %v: %s", err, errb.Bytes())
	}
	var res childResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return childResult{}, 0, fmt.Errorf("library burst child printed %q: %v", out.Bytes(), err)
	}
	res.CPUNs = int64(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime())
	return res, maxRSS(cmd.ProcessState), nil
}
