package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// burstBudgets are the per-replica budgets item 12 compares; the default must be among them.
var burstBudgets = []int{256, pool.DefaultMaxInflight, 4096}

// Item 12 (issue 13): a burst far above the budget, from the CLI batch and from the library, at
// three budgets side by side: failures, wall time against the bound the budget allows, peak RSS.
func itemBurst(ctx context.Context, h *harness, sec *section) error {
	calls, secs := 16000, 2.0
	if h.cfg.quick {
		calls, secs = 4000, 0.5
	}
	const replicas = 2
	sec.title = fmt.Sprintf("%s concurrent async calls of %g s over %d replicas: the per-replica budget (CLI batch and library)", commas(calls), secs, replicas)
	bin, err := h.binary(ctx)
	if err != nil {
		return err
	}
	envs := map[int]*rfenv.Env{}
	for _, b := range burstBudgets {
		e, err := h.upWith(ctx, fmt.Sprintf("burst%d", b), "episodic", rfenv.UpOptions{Replicas: replicas, MaxInflight: b})
		if err != nil {
			return err
		}
		envs[b] = e
	}
	batchFile := filepath.Join(h.tmp, "burst.jsonl")
	line := fmt.Sprintf("{\"seconds\": %g}\n", secs)
	if err := os.WriteFile(batchFile, []byte(strings.Repeat(line, calls)), 0o644); err != nil {
		return err
	}
	environ := append(os.Environ(), "RFENV_STATE_DIR="+h.stateDir, "NO_COLOR=1")
	cli := func(e *rfenv.Env) (childResult, int64, error) {
		cmd := exec.CommandContext(ctx, bin, "call", e.Name(), "hold", "--batch", batchFile,
			"--concurrency", strconv.Itoa(calls), "--timeout", "10m")
		cmd.Env = environ
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		t0 := time.Now()
		runErr := cmd.Run()
		wall := time.Since(t0)
		lines := bytes.Count(out.Bytes(), []byte("\n"))
		res := childResult{Calls: calls, WallNs: int64(wall)}
		if cmd.ProcessState != nil {
			res.CPUNs = int64(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime())
		}
		res.Failures = calls - lines + bytes.Count(out.Bytes(), []byte(`"error"`))
		if res.Failures > 0 || runErr != nil {
			res.FirstErr = fmt.Sprintf("exit %v; %.300s", runErr, errb.Bytes())
			if i := bytes.Index(out.Bytes(), []byte(`"error"`)); i >= 0 {
				res.FirstErr += fmt.Sprintf("; first error line: %.300s", out.Bytes()[i:])
			}
			res.Failures = max(res.Failures, 1)
		}
		return res, maxRSS(cmd.ProcessState), nil
	}
	lib := func(e *rfenv.Env) (childResult, int64, error) { return h.runChild(ctx, e, calls, secs) }

	// Baselines: the same programs making one call, so that per-call memory excludes the binary's own.
	var cliBase, libBase []int64
	for i := 0; i < 3; i++ {
		cmd := exec.CommandContext(ctx, bin, "call", envs[pool.DefaultMaxInflight].Name(), "hold", "--arg", "seconds=0")
		cmd.Env = environ
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("baseline call: %v: %s", err, out)
		}
		cliBase = append(cliBase, maxRSS(cmd.ProcessState))
		_, rss, err := h.runChild(ctx, envs[pool.DefaultMaxInflight], 1, 0)
		if err != nil {
			return err
		}
		libBase = append(libBase, rss)
	}
	cliB, libB := medianInt(cliBase), medianInt(libBase)

	type side struct {
		label string
		run   func(*rfenv.Env) (childResult, int64, error)
		base  int64
	}
	sides := []side{{"CLI `rfenv call NAME hold --batch FILE --concurrency " + commas(calls) + "`", cli, cliB},
		{"library, " + commas(calls) + " goroutines calling env.Call (child process)", lib, libB}}
	type cell struct {
		walls []time.Duration
		rss   []int64
		fails int
		first string
		cpu   []string
	}
	cells := map[[2]int]*cell{} // (side, budget)
	runs := min(h.cfg.runs, 3)
	n := 0
	for r := 0; r < runs; r++ {
		for j := range burstBudgets {
			b := burstBudgets[(j+r)%len(burstBudgets)]
			for k := range sides {
				si := (k + r + j) % len(sides) // alternate which side goes first
				cs := h.sampler("shim", envs[b])
				before := cs.sample()
				res, rss, err := sides[si].run(envs[b])
				cpu := cs.sample().sub(before)
				if err != nil {
					return err
				}
				c := cells[[2]int{si, b}]
				if c == nil {
					c = &cell{}
					cells[[2]int{si, b}] = c
				}
				c.walls = append(c.walls, time.Duration(res.WallNs))
				c.rss = append(c.rss, rss)
				c.cpu = append(c.cpu, burstCPU(cpu, time.Duration(res.CPUNs)))
				c.fails += res.Failures
				if c.first == "" {
					c.first = res.FirstErr
				}
				n++
				h.vlogf("burst budget %d %s: %s, %d failures, RSS %s", b, sides[si].label, ms(time.Duration(res.WallNs)), res.Failures, mib(rss))
			}
		}
	}
	bound := func(b int) time.Duration {
		return time.Duration(float64(calls) / float64(replicas*b) * secs * float64(time.Second))
	}
	var summary []string
	for si, s := range sides {
		for _, b := range burstBudgets {
			c := cells[[2]int{si, b}]
			w := distOf(c.walls)
			ratio := w.median.Seconds() / bound(b).Seconds()
			tag := fmt.Sprintf("budget %d", b)
			if b == pool.DefaultMaxInflight {
				tag += " (default)"
			}
			sec.add(row{name: s.label + ", " + tag + ": wall time", median: ms(w.median), p99: ms(w.max) + " (slowest)", n: fmt.Sprintf("%d runs", w.n),
				target: fmt.Sprintf("≤ 1.5 × bound %s = %s (%.2f×)", ms(bound(b)), ms(time.Duration(1.5*float64(bound(b)))), ratio), met: boolp(ratio <= 1.5)})
			sec.add(row{name: s.label + ", " + tag + ": failures", median: fmt.Sprintf("%d of %s", c.fails, commas(calls*len(c.walls))), n: fmt.Sprintf("%d runs", w.n), target: "0", met: boolp(c.fails == 0)})
			rss := medianInt(c.rss)
			per := float64(rss-s.base) / float64(calls)
			wire := float64(rss-s.base) / float64(min(calls, replicas*b))
			sec.add(row{name: s.label + ", " + tag + ": peak RSS", median: mib(rss), p99: mib(maxInt(c.rss)) + " (largest)",
				n: fmt.Sprintf("%d runs", w.n), target: fmt.Sprintf("— (%s per outstanding call, %s per call on the wire)", kib(per), kib(wire))})
			if c.first != "" {
				sec.note("%s, budget %d: first failure: %s", s.label, b, c.first)
			}
			sec.note("%s, budget %d: walls %s; CPU per run (%% of one core over the run): %s.", s.label, b, fmtDurs(c.walls), strings.Join(c.cpu, " | "))
			summary = append(summary, fmt.Sprintf("%s at budget %d: wall %s (%.2f× the bound), peak RSS %s", strings.SplitN(s.label, " ", 2)[0], b, ms(w.median), ratio, mib(rss)))
		}
	}
	sec.note("Bound = calls ÷ (replicas × budget) × %g s: the time %s calls take when each replica runs exactly its budget at once. Fixture testdata/envs/episodic (`hold(seconds)`, async), %d replicas per budget, one environment per budget brought up with `--max-inflight B`; %d runs per cell, rotating budgets and which side goes first.", secs, commas(calls), replicas, runs)
	sec.note("Peak RSS is the process's ru_maxrss (wait4). Per-call figures subtract the same program making one call (CLI %s, library child %s) and divide by the %s outstanding calls, or by the replicas × budget calls on the wire at once (each holds a connection).", mib(cliB), mib(libB), commas(calls))
	sec.note("Side by side: %s.", strings.Join(summary, "; "))
	for _, b := range burstBudgets {
		if p, err := peaks(ctx, envs[b]); err == nil {
			sec.note("Budget %d: the replicas ran at most %v `hold` calls at once (their own count over every run).", b, p)
		}
	}
	return nil
}

// Item 13 (issue 13): 100,000 calls of 10 ms at concurrency 10,000 from the library.
func itemMany(ctx context.Context, h *harness, sec *section) error {
	total, conc := 100000, 10000
	if h.cfg.quick {
		total, conc = 20000, 2000
	}
	const hold = 0.01
	sec.title = fmt.Sprintf("%s calls of 10 ms at concurrency %s (library, 2 replicas, default budget)", commas(total), commas(conc))
	env, err := h.upWith(ctx, fmt.Sprintf("burst%d", pool.DefaultMaxInflight), "episodic", rfenv.UpOptions{Replicas: 2, MaxInflight: pool.DefaultMaxInflight})
	if err != nil {
		return err
	}
	cs := h.sampler("shim", env)
	kw := map[string]float64{"seconds": hold}
	var rates []float64
	var lat []time.Duration
	var fails int64
	var first error
	var details []string
	runs := min(h.cfg.runs, 3)
	for r := 0; r < runs; r++ {
		var next, failed atomic.Int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		runLat := make([][]time.Duration, conc)
		before := cs.sample()
		t0 := time.Now()
		for g := 0; g < conc; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(total) {
					cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
					c0 := time.Now()
					_, err := env.Call(cctx, "hold", kw)
					runLat[g] = append(runLat[g], time.Since(c0))
					cancel()
					if err != nil {
						failed.Add(1)
						mu.Lock()
						if first == nil {
							first = err
						}
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		wall := time.Since(t0)
		cpu := cs.sample().sub(before)
		for _, l := range runLat {
			lat = append(lat, l...)
		}
		fails += failed.Load()
		rates = append(rates, float64(total)/wall.Seconds())
		details = append(details, fmt.Sprintf("%s: %.0f calls/s; CPU: %s", ms(wall), float64(total)/wall.Seconds(), cpu.describe()))
	}
	ld := distOf(lat)
	med := floatMedian(rates)
	sec.add(row{name: "failures", median: fmt.Sprintf("%d of %s", fails, commas(total*runs)), n: fmt.Sprintf("%d runs", runs), target: "0", met: boolp(fails == 0)})
	sec.add(row{name: "throughput", median: rate(med), p99: us(ld.p99) + " latency", n: fmt.Sprintf("%d runs", runs),
		target: fmt.Sprintf("— (bound from the budget: 2 × %d ÷ 10 ms = %s)", pool.DefaultMaxInflight, rate(2*float64(pool.DefaultMaxInflight)/hold))})
	sec.add(row{name: "call latency (queue wait + call)", median: us(ld.median), p99: us(ld.p99), n: strconv.Itoa(ld.n), target: "—"})
	if first != nil {
		sec.note("First failure: %v", first)
	}
	sec.note("%d goroutines share one library pool, each calling `hold(seconds=0.01)` until %s calls are made; at most 2 × %d are on the wire at once, the rest wait in the pool's FIFO queue. Runs: %s.", conc, commas(total), pool.DefaultMaxInflight, strings.Join(details, " | "))
	return nil
}

// burstCPU is where CPU went during one burst, in % of one core: the replicas, the calling process
// (its own rusage), the whole machine and everything else on it.
func burstCPU(d cpuDelta, caller time.Duration) string {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(d.containers)) {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", n, d.pct(d.containers[n])))
	}
	w := d.wall.Seconds()
	parts = append(parts, fmt.Sprintf("caller %.0f%%", d.pct(caller)),
		fmt.Sprintf("machine busy %.0f%% of %d00%%", 100*(d.machine.total-d.machine.idle)/w, len(cpuList())))
	return strings.Join(parts, ", ")
}

func commas(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func medianInt(xs []int64) int64 {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return int64(floatMedian(f))
}

func maxInt(xs []int64) int64 {
	var m int64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
