package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pythonBench is what bench/python/bench_serve.py reports.
type pythonBench struct {
	ServeNs []int64   `json:"serve_ns"`
	RawNs   []int64   `json:"raw_ns"`
	GatherS []float64 `json:"gather_s"`
}

// pyRun holds the one Python run that items 9 and 10 share (one harness per bench process).
var pyRun struct {
	sync.Mutex
	res *pythonBench
}

// runPythonBench runs the Python side of items 9 and 10 once per harness (both items share it):
// Debian's python3 with python3-httpx, the package from python/, and rfenv serve started by it.
func (h *harness) runPythonBench(ctx context.Context) (*pythonBench, error) {
	pyRun.Lock()
	defer pyRun.Unlock()
	if pyRun.res != nil {
		return pyRun.res, nil
	}
	bin, err := h.binary(ctx)
	if err != nil {
		return nil, err
	}
	env, err := h.env(ctx, "one", "shim", 1)
	if err != nil {
		return nil, err
	}
	var items []string
	for _, n := range []int{9, 10} {
		if h.cfg.items[n] {
			items = append(items, strconv.Itoa(n))
		}
	}
	py := os.Getenv("PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	cmd := exec.CommandContext(ctx, py, filepath.Join(h.cfg.root, "bench", "python", "bench_serve.py"))
	cmd.Env = append(os.Environ(),
		"RFENV_BIN="+bin, "RFENV_STATE_DIR="+h.stateDir, "RFENV_SERVE=",
		"RFENV_BENCH_ENV="+env.Name(), "RFENV_BENCH_ADDR="+endpointAddr(env, 0),
		"RFENV_BENCH_TOKEN="+env.Record().Token, // through the environment, never on a command line
		"RFENV_BENCH_ROUNDS="+strconv.Itoa(h.cfg.rounds), "RFENV_BENCH_PER_ROUND="+strconv.Itoa(h.cfg.perRound),
		"RFENV_BENCH_GATHER_RUNS="+strconv.Itoa(h.cfg.runs), "RFENV_BENCH_ITEMS="+strings.Join(items, ","))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s bench_serve.py: %v: %s", py, err, errb.Bytes())
	}
	var res pythonBench
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("bench_serve.py output: %v: %s", err, out.Bytes())
	}
	pyRun.res = &res
	return &res, nil
}

func nsDurations(ns []int64) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n)
	}
	return out
}

// Item 9: Python through rfenv serve vs a raw httpx POST straight to the same replica.
func itemPythonLatency(ctx context.Context, h *harness, sec *section) error {
	sec.title = "Call latency from Python: rfenv package through `rfenv serve` (unix socket) vs raw httpx POST to the replica, sequential"
	r, err := h.runPythonBench(ctx)
	if err != nil {
		return err
	}
	s, w := distOf(nsDurations(r.ServeNs)), distOf(nsDurations(r.RawNs))
	ratio := float64(s.median) / float64(w.median)
	sec.add(row{name: "Python `await env.echo(x=1)` through rfenv serve", median: us(s.median), p99: us(s.p99), n: strconv.Itoa(s.n), target: "≤ 1 ms", met: boolp(s.median <= time.Millisecond)})
	sec.add(row{name: "raw httpx.AsyncClient POST /call to the replica", median: us(w.median), p99: us(w.p99), n: strconv.Itoa(w.n), target: "—"})
	sec.add(row{name: "through serve / raw httpx (median)", median: fmt.Sprintf("%.2f×", ratio), p99: fmt.Sprintf("%.2f×", float64(s.p99)/float64(w.p99)), target: "≤ 1.5×", met: boolp(ratio <= 1.5)})
	sec.note("%d rounds of %d sequential calls per side in one asyncio loop, alternating which side goes first; method `echo(x=1)` (async) on one shim replica. Python: Debian's python3 %s, httpx from Debian.", h.cfg.rounds, h.cfg.perRound, pythonVersion(ctx))
	sec.note("through serve: median %s, min %s; raw httpx: median %s, min %s. The serve path is: the package's asyncio HTTP/1.1 client over the unix socket, rfenv serve, pool.Call, the replica.", us(s.median), us(s.min), us(w.median), us(w.min))
	return nil
}

// Item 10: 2,000 calls in one asyncio.gather through rfenv serve.
func itemPythonGather(ctx context.Context, h *harness, sec *section) error {
	sec.title = "2,000 calls in one asyncio.gather from Python through `rfenv serve`, 1 replica"
	r, err := h.runPythonBench(ctx)
	if err != nil {
		return err
	}
	if len(r.GatherS) == 0 {
		return fmt.Errorf("no gather runs")
	}
	rates := make([]time.Duration, len(r.GatherS)) // seconds per 2,000 calls, for distOf
	for i, s := range r.GatherS {
		rates[i] = time.Duration(s * float64(time.Second))
	}
	slices.Sort(rates)
	med := rates[len(rates)/2]
	perSec := 2000 / med.Seconds()
	sec.add(row{name: "calls/s (median of runs), `await asyncio.gather(*[env.echo(x=i) for i in range(2000)])`", median: fmt.Sprintf("%.0f/s", perSec), p99: "—", n: strconv.Itoa(len(rates)), target: "> 290/s (the original library here)", met: boolp(perSec > 290)})
	sec.note("%d runs; each takes %s at the median (fastest %s). The package keeps up to 256 connections to the server; the pool sends to the replica within its in-flight budget.", len(rates), ms(med), ms(rates[0]))
	return nil
}

func pythonVersion(ctx context.Context) string {
	py := os.Getenv("PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	out, err := exec.CommandContext(ctx, py, "-c", "import platform; print(platform.python_version())").Output()
	if err != nil {
		return "?"
	}
	return string(bytes.TrimSpace(out))
}
