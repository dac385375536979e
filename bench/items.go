package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/rfenv/rfenv/pkg/batch"
	"github.com/rfenv/rfenv/pkg/build"
	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/state"
)

// Item 1: pool.Call next to a raw net/http POST of the same body and headers to the same replica.
func itemLatency(ctx context.Context, h *harness, sec *section) error {
	sec.title = "Call latency: Go library (pool.Call) vs raw net/http, 1 replica, keep-alive, sequential"
	env, err := h.env(ctx, "one", "shim", 1)
	if err != nil {
		return err
	}
	p := env.Pool()
	body, err := p.Encode(trivialReq)
	if err != nil {
		return err
	}
	raw := newRawCaller(endpointAddr(env, 0), env.Record().Token, body, 4)
	defer raw.close()
	lib := func(ctx context.Context) error { _, err := p.Call(ctx, trivialReq); return err }
	dl, dr, err := interleave(ctx, h.cfg.rounds, h.cfg.perRound, lib, raw.call)
	if err != nil {
		return err
	}
	l, r := distOf(dl), distOf(dr)
	ratio := float64(l.median) / float64(r.median)
	sec.add(row{name: "library: pool.Call (encode, POST, extract result)", median: us(l.median), p99: us(l.p99), n: strconv.Itoa(l.n), target: "—"})
	sec.add(row{name: "raw net/http POST, same body and headers", median: us(r.median), p99: us(r.p99), n: strconv.Itoa(r.n), target: "—"})
	sec.add(row{name: "library / raw (median)", median: fmt.Sprintf("%.2f×", ratio), p99: fmt.Sprintf("%.2f×", float64(l.p99)/float64(r.p99)), target: "≤ 1.3×", met: boolp(ratio <= 1.3)})
	sec.note("%d rounds of %d sequential calls per side, alternating which side goes first; method `echo(x=1)` (async) on one shim replica.", h.cfg.rounds, h.cfg.perRound)
	sec.note("library: median %s, p99 %s, min %s; raw: median %s, p99 %s, min %s; the library adds %s per call at the median.",
		us(l.median), us(l.p99), us(l.min), us(r.median), us(r.p99), us(r.min), us(l.median-r.median))
	return nil
}

// Item 2: `rfenv call` as a whole process, with what its time is made of.
func itemProcess(ctx context.Context, h *harness, sec *section) error {
	sec.title = "`rfenv call` as a whole process (start, state, call, print)"
	bin, err := h.binary(ctx)
	if err != nil {
		return err
	}
	env, err := h.env(ctx, "one", "shim", 1)
	if err != nil {
		return err
	}
	name := env.Name()
	emptyGo, err := h.emptyGoBinary(ctx)
	if err != nil {
		return err
	}
	floor, err := h.floorCallBinary(ctx)
	if err != nil {
		return err
	}
	rec := env.Record()
	port := rec.Instances[0].Port
	if port == 0 {
		port = rec.Port
	}
	environ := append(os.Environ(), "RFENV_STATE_DIR="+h.stateDir, "NO_COLOR=1",
		"FLOOR_ADDR="+net.JoinHostPort(rec.Instances[0].Address, strconv.Itoa(port)), "FLOOR_TOKEN="+rec.Token)
	runProc := func(extraEnv []string, argv ...string) (time.Duration, []byte, error) {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(environ, extraEnv...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		t0 := time.Now()
		err := cmd.Run()
		d := time.Since(t0)
		if err != nil {
			return d, errb.Bytes(), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, errb.Bytes())
		}
		return d, errb.Bytes(), nil
	}
	callArgv := []string{bin, "call", name, trivialMethod, "--arg", "x=1"}
	full := filepath.Join(filepath.Dir(bin), protocol.FullBinaryName)
	fullCallArgv := append([]string{full}, callArgv[1:]...)
	kinds := []struct {
		label string
		argv  []string
	}{
		{"`rfenv call NAME echo --arg x=1` (whole process)", callArgv},
		{"`rfenv version` (handed by the front to rfenv-full: both binaries start)", []string{bin, "version"}},
		{"empty Go program (exec + Go runtime start)", []string{emptyGo}},
		{"/bin/true (exec floor)", []string{"/bin/true"}},
		{"the same call by rfenv-full, the full binary (BuildKit, client-go linked; reference)", fullCallArgv},
		{"floor: a Go program that only sends the same call with net/http (bench/floorcall)", []string{floor}},
		{"floor: the same call written to one TCP connection, no net/http Transport (floorcall -raw)", []string{floor, "-raw"}},
	}
	times := make([][]time.Duration, len(kinds))
	for i := 0; i < 3; i++ { // warm the page cache
		for _, k := range kinds {
			if _, _, err := runProc(nil, k.argv...); err != nil {
				return err
			}
		}
	}
	for i := 0; i < h.cfg.procRuns; i++ {
		for j := range kinds {
			k := (j + i) % len(kinds) // rotate the order: drift hits every kind alike
			d, _, err := runProc(nil, kinds[k].argv...)
			if err != nil {
				return err
			}
			times[k] = append(times[k], d)
		}
	}
	call := distOf(times[0])
	sec.add(row{name: kinds[0].label, median: ms(call.median), p99: ms(call.p99), n: strconv.Itoa(call.n), target: "< 20 ms", met: boolp(call.median < 20*time.Millisecond)})
	for k := 1; k < len(kinds); k++ {
		d := distOf(times[k])
		sec.add(row{name: kinds[k].label, median: ms(d.median), p99: ms(d.p99), n: strconv.Itoa(d.n), target: "—"})
	}
	empty, fullCall := distOf(times[2]), distOf(times[4])
	ratio := float64(call.median) / float64(empty.median)
	sec.add(row{name: "`rfenv call` / empty Go program (median)", median: fmt.Sprintf("%.2f×", ratio), p99: fmt.Sprintf("%.2f×", float64(call.p99)/float64(empty.p99)), target: "≤ 3×", met: boolp(ratio <= 3)})
	sec.add(row{name: "rfenv-full call / empty Go program (median; reference)", median: fmt.Sprintf("%.2f×", float64(fullCall.median)/float64(empty.median)), target: "—"})
	floorHTTP, floorRaw := distOf(times[5]), distOf(times[6])
	sec.add(row{name: "floor net/http call / empty Go program (median; the least a Go client of net/http takes)", median: fmt.Sprintf("%.2f×", float64(floorHTTP.median)/float64(empty.median)), target: "—"})
	sec.add(row{name: "floor raw TCP call / empty Go program (median; the least any Go process takes)", median: fmt.Sprintf("%.2f×", float64(floorRaw.median)/float64(empty.median)), target: "—"})

	// In-process: the state load and a call on a fresh connection, as `rfenv call` does them.
	var loads, firsts []time.Duration
	for i := 0; i < h.cfg.procRuns; i++ {
		t0 := time.Now()
		c, err := rfenv.New(rfenv.WithStateDir(h.stateDir))
		if err != nil {
			return err
		}
		e, err := c.Get(ctx, name, rfenv.WithSharedRoundRobin())
		if err != nil {
			return err
		}
		t1 := time.Now()
		if _, err := e.Pool().Call(ctx, trivialReq); err != nil {
			return err
		}
		t2 := time.Now()
		e.Release()
		c.Close()
		loads = append(loads, t1.Sub(t0))
		firsts = append(firsts, t2.Sub(t1))
	}
	ld, fd := distOf(loads), distOf(firsts)
	sec.add(row{name: "in process: open the state and find the environment", median: us(ld.median), p99: us(ld.p99), n: strconv.Itoa(ld.n), target: "—"})
	sec.add(row{name: "in process: first call on a new connection (dial + call)", median: us(fd.median), p99: us(fd.p99), n: strconv.Itoa(fd.n), target: "—"})

	// Package initialisation of both binaries, from the runtime's own trace.
	traces := func(argv []string) ([]time.Duration, map[string][]time.Duration, error) {
		var totals []time.Duration
		perPkg := map[string][]time.Duration{}
		for i := 0; i < 9; i++ {
			_, stderr, err := runProc([]string{"GODEBUG=inittrace=1"}, argv...)
			if err != nil {
				return nil, nil, err
			}
			total, pk := parseInitTrace(stderr)
			totals = append(totals, total)
			for p, d := range pk {
				perPkg[p] = append(perPkg[p], d)
			}
		}
		return totals, perPkg, nil
	}
	initTotals, perPkg, err := traces(callArgv)
	if err != nil {
		return err
	}
	fullInits, _, err := traces(fullCallArgv)
	if err != nil {
		return err
	}
	it, fit := distOf(initTotals), distOf(fullInits)
	type pd struct {
		pkg string
		d   time.Duration
	}
	var top []pd
	for p, ds := range perPkg {
		top = append(top, pd{p, distOf(ds).median})
	}
	slices.SortFunc(top, func(a, b pd) int { return int(b.d - a.d) })
	var tops []string
	for i := 0; i < len(top) && i < 8; i++ {
		tops = append(tops, fmt.Sprintf("%s %s", top[i].pkg, us(top[i].d)))
	}
	sec.add(row{name: "package init inside `rfenv call` (GODEBUG=inittrace=1, sum of clock)", median: ms(it.median), p99: ms(it.p99), n: strconv.Itoa(it.n), target: "—"})
	sec.add(row{name: "package init inside the same call by rfenv-full (reference)", median: ms(fit.median), p99: ms(fit.p99), n: strconv.Itoa(fit.n), target: "—"})
	sec.note("Breakdown at the median: exec + Go runtime ≈ the empty Go program %s; package init %s; state load %s; first call on a new connection %s; the rest of the %s is reading the configuration and the flags, printing and exit. A Go program that makes only this call takes %s with net/http (%s above the empty program) and %s on a bare TCP connection: `rfenv call` is %s above the net/http floor.",
		ms(empty.median), ms(it.median), us(ld.median), us(fd.median), ms(call.median), ms(floorHTTP.median), ms(floorHTTP.median-empty.median), ms(floorRaw.median), ms(call.median-floorHTTP.median))
	sec.note("Slowest package inits (median of 9 traces): %s.", strings.Join(tops, ", "))
	sec.note("`rfenv` is the lean front (cmd/front, tag rfenvlean): it links the configuration, the state file, pkg/pool and pkg/running, runs plain calls itself and hands every other command line to rfenv-full beside it. rfenv-full links everything (the Docker client, BuildKit, gRPC, client-go, cobra, lipgloss); its package init is %s at the median against the front's %s.", ms(fit.median), ms(it.median))
	return nil
}

var initLine = regexp.MustCompile(`^init (\S+) @[0-9.]+ ms, ([0-9.]+) ms clock`)

func parseInitTrace(stderr []byte) (time.Duration, map[string]time.Duration) {
	var total time.Duration
	per := map[string]time.Duration{}
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	for sc.Scan() {
		m := initLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f, _ := strconv.ParseFloat(m[2], 64)
		d := time.Duration(f * float64(time.Millisecond))
		total += d
		per[m[1]] += d
	}
	return total, per
}

// floorCallBinary builds bench/floorcall, the floor of a whole-process call (see its comment).
func (h *harness) floorCallBinary(ctx context.Context) (string, error) {
	bin := filepath.Join(h.tmp, "floorcall")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./bench/floorcall")
	cmd.Dir = h.cfg.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build bench/floorcall: %v: %s", err, out)
	}
	return bin, nil
}

// emptyGoBinary compiles `func main() {}` (the floor of any Go process's start).
func (h *harness) emptyGoBinary(ctx context.Context) (string, error) {
	dir := filepath.Join(h.tmp, "empty")
	bin := filepath.Join(dir, "empty")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module empty\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the empty Go program: %v: %s", err, out)
	}
	return bin, nil
}

// diagnose says from a run's CPU split which resources ran out: a single-threaded server at about
// one core, the machine's cores (client, servers, kernel and other processes together), or neither.
func diagnose(d cpuDelta, servers []string) string {
	var hot []string
	for _, s := range servers {
		if p := d.pct(d.containers[s]); p >= 85 {
			hot = append(hot, fmt.Sprintf("%s %.0f%% of its one core", s, p))
		}
	}
	w := d.wall.Seconds()
	busy := 100 * (d.machine.total - d.machine.idle) / w
	cores := float64(len(cpuList()))
	machine := fmt.Sprintf("the machine's %.0f cores %.0f%% busy (this client %.0f%%, kernel system+softirq %.0f%%, other processes %.0f%%)",
		cores, busy, d.pct(d.self), 100*(d.machine.system+d.machine.softirq)/w, d.others())
	full := busy >= 90*cores
	switch {
	case len(hot) == len(servers) && full:
		return "limit: the single-threaded server (" + strings.Join(hot, ", ") + ") and the machine (" + machine + ") ran out together"
	case len(hot) == len(servers):
		return "limit: the single-threaded server is CPU-bound (" + strings.Join(hot, ", ") + "); " + machine
	case full:
		return "limit: " + machine + "; the server side had CPU to spare"
	case len(hot) > 0:
		return "limit: partly the servers (" + strings.Join(hot, ", ") + "); " + machine
	default:
		return "no CPU ran out (" + machine + "): the limit is latency (round trips × concurrency)"
	}
}

// Item 3: throughput of 64 goroutines sharing one pool, 1 and 2 replicas.
func itemThroughput(ctx context.Context, h *harness, sec *section) error {
	sec.title = "Throughput: 64 goroutines sharing one pool, trivial method"
	env1, err := h.env(ctx, "one", "shim", 1)
	if err != nil {
		return err
	}
	env2, err := h.env(ctx, "two", "shim", 2)
	if err != nil {
		return err
	}
	type cfgT struct {
		label string
		call  func(context.Context) error
		cs    *cpuSampler
		runs  []loadResult
	}
	libCall := func(e *rfenv.Env) func(context.Context) error {
		p := e.Pool()
		return func(ctx context.Context) error { _, err := p.Call(ctx, trivialReq); return err }
	}
	body, err := env1.Pool().Encode(trivialReq)
	if err != nil {
		return err
	}
	raw := newRawCaller(endpointAddr(env1, 0), env1.Record().Token, body, 256)
	defer raw.close()
	cfgs := []*cfgT{
		{label: "1 replica", call: libCall(env1), cs: h.sampler("shim", env1)},
		{label: "2 replicas", call: libCall(env2), cs: h.sampler("shim", env2)},
		{label: "1 replica, raw net/http instead of the library (reference)", call: raw.call, cs: h.sampler("shim", env1)},
	}
	for r := 0; r < h.cfg.runs; r++ {
		for j := range cfgs {
			c := cfgs[(j+r)%len(cfgs)]
			res := runLoad(ctx, 64, h.cfg.duration, c.call, c.cs)
			if res.errors > 0 {
				return fmt.Errorf("%s: %d calls failed, first: %v", c.label, res.errors, res.firstErr)
			}
			h.vlogf("throughput %s: %.0f calls/s; %s", c.label, res.rate(), res.cpu.describe())
			c.runs = append(c.runs, res)
		}
	}
	var rates1 float64
	for i, c := range cfgs {
		rates := make([]float64, len(c.runs))
		var lat []time.Duration
		for k, r := range c.runs {
			rates[k] = r.rate()
			lat = append(lat, r.lat...)
		}
		med := floatMedian(rates)
		ld := distOf(lat)
		rw := row{name: "64 callers, " + c.label, median: rate(med), p99: us(ld.p99) + " latency", n: fmt.Sprintf("%d × %s", len(c.runs), h.cfg.duration)}
		if i == 0 {
			rates1 = med
			rw.target, rw.met = "≥ 15,000 calls/s", boolp(med >= 15000)
		} else {
			rw.target = fmt.Sprintf("— (%.2f× the library on 1 replica)", med/rates1)
		}
		sec.add(rw)
		mr := medianRun(c.runs)
		var servers []string
		for _, n := range c.cs.names {
			servers = append(servers, n)
		}
		sec.note("%s: runs %s; latency under load median %s, p99 %s. CPU during the median run (%% of one core): %s.",
			c.label, fmtRates(rates), us(ld.median), us(ld.p99), mr.cpu.describe())
		sec.note("%s: %s. %s.", c.label, costs(mr, servers), diagnose(mr.cpu, servers))
	}
	return nil
}

// costs is the CPU per call of each side, and the throughput those costs allow: single-threaded
// servers cannot together exceed one core each divided by their CPU per call, and all sides cannot
// exceed the machine's cores divided by the sum. Costs per call hold up far better than rates on a
// machine that others are using.
func costs(r loadResult, servers []string) string {
	n := float64(max(r.calls, 1))
	var srv, srvSys float64 // µs per call, all servers together
	for _, s := range servers {
		srv += r.cpu.containers[s].Seconds() * 1e6 / n
		srvSys += r.cpu.containersSys[s].Seconds() * 1e6 / n
	}
	client := r.cpu.self.Seconds() * 1e6 / n
	clientSys := r.cpu.selfSys.Seconds() * 1e6 / n
	softirq := r.cpu.machine.softirq * 1e6 / n
	cores := float64(len(cpuList()))
	return fmt.Sprintf("CPU per call: server %.0f µs (kernel %.0f), this client %.0f µs (kernel %.0f), softirq (machine-wide) %.0f µs; %.1f context switches per call (machine-wide); at these costs the server process(es) alone allow ≈ %.0f calls/s and the whole machine (%.0f cores, nothing else running) ≈ %.0f calls/s",
		srv, srvSys, client, clientSys, softirq, r.cpu.machine.ctxt/n, float64(len(servers))*1e6/max(srv, 1), cores, cores*1e6/max(srv+client+softirq, 1))
}

func medianRun(runs []loadResult) loadResult {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b loadResult) int {
		switch {
		case a.rate() < b.rate():
			return -1
		case a.rate() > b.rate():
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

func fmtRates(rs []float64) string {
	var p []string
	for _, r := range rs {
		p = append(p, fmt.Sprintf("%.0f", r))
	}
	return strings.Join(p, ", ") + " calls/s"
}

// Item 4: the shim against uvicorn + FastAPI doing the same work, with the same Go client.
func itemShimVsFastAPI(ctx context.Context, h *harness, sec *section) error {
	sec.title = "The shim vs uvicorn + FastAPI (same Actor, same bodies, same Go client)"
	shimEnv, err := h.env(ctx, "one", "shim", 1)
	if err != nil {
		return err
	}
	faEnv, err := h.env(ctx, "fastapi", "fastapi", 1)
	if err != nil {
		return err
	}
	body, err := shimEnv.Pool().Encode(trivialReq)
	if err != nil {
		return err
	}
	shim := newRawCaller(endpointAddr(shimEnv, 0), shimEnv.Record().Token, body, 128)
	fa := newRawCaller(endpointAddr(faEnv, 0), faEnv.Record().Token, body, 128)
	defer shim.close()
	defer fa.close()
	for _, c := range []*rawCaller{shim, fa} { // same answer from both
		out, err := c.do(ctx)
		if err != nil {
			return err
		}
		var v map[string]any
		if json.Unmarshal(out, &v) != nil || fmt.Sprint(v["result"]) != "1" {
			return fmt.Errorf("%s answered %s, want {\"result\": 1}", c.url, out)
		}
	}
	floorAddr, floorToken, floorID, err := h.floorServer(ctx)
	if err != nil {
		return err
	}
	floor := newRawCaller(floorAddr, floorToken, body, 128)
	defer floor.close()
	if out, err := floor.do(ctx); err != nil || string(out) != `{"result":1}` {
		return fmt.Errorf("floor server answered %s (%v), want {\"result\":1}", out, err)
	}
	lat, err := interleaveN(ctx, h.cfg.rounds, h.cfg.perRound/2, shim.call, fa.call, floor.call)
	if err != nil {
		return err
	}
	ds, df := lat[0], lat[1]
	ls, lf, lg := distOf(ds), distOf(df), distOf(lat[2])
	latRatio := float64(lf.median) / float64(ls.median)
	sec.add(row{name: "latency, shim (sequential)", median: us(ls.median), p99: us(ls.p99), n: strconv.Itoa(ls.n), target: "—"})
	sec.add(row{name: "latency, uvicorn + FastAPI (sequential)", median: us(lf.median), p99: us(lf.p99), n: strconv.Itoa(lf.n), target: "—"})
	sec.add(row{name: "latency, floor: minimal Go net/http server in a container (reference)", median: us(lg.median), p99: us(lg.p99), n: strconv.Itoa(lg.n), target: "—"})
	sec.add(row{name: "latency: FastAPI / shim (median)", median: fmt.Sprintf("%.2f×", latRatio), p99: fmt.Sprintf("%.2f×", float64(lf.p99)/float64(ls.p99)), target: "≥ 2× (shim lower)", met: boolp(latRatio >= 2)})

	type side struct {
		label string
		c     *rawCaller
		cs    *cpuSampler
		runs  []loadResult
	}
	floorCS := &cpuSampler{docker: h.docker, containers: []string{floorID}, names: []string{"Go server"}}
	sides := []*side{
		{label: "shim", c: shim, cs: h.sampler("shim", shimEnv)},
		{label: "FastAPI", c: fa, cs: h.sampler("uvicorn", faEnv)},
		{label: "floor: minimal Go net/http server (reference)", c: floor, cs: floorCS},
	}
	for r := 0; r < h.cfg.runs; r++ {
		for j := range sides {
			s := sides[(j+r)%len(sides)]
			res := runLoad(ctx, 64, h.cfg.duration, s.c.call, s.cs)
			if res.errors > 0 {
				return fmt.Errorf("%s: %d calls failed, first: %v", s.label, res.errors, res.firstErr)
			}
			s.runs = append(s.runs, res)
		}
	}
	var meds [3]float64
	for i, s := range sides {
		rates := make([]float64, len(s.runs))
		var lat []time.Duration
		for k, r := range s.runs {
			rates[k] = r.rate()
			lat = append(lat, r.lat...)
		}
		meds[i] = floatMedian(rates)
		ld := distOf(lat)
		sec.add(row{name: "throughput, " + s.label + " (64 concurrent)", median: rate(meds[i]), p99: us(ld.p99) + " latency", n: fmt.Sprintf("%d × %s", len(s.runs), h.cfg.duration), target: "—"})
		mr := medianRun(s.runs)
		if i == 2 {
			sec.note("%s under 64 concurrent callers: runs %s; CPU (%% of one core): %s (a Go server uses every core, so the single-process ceilings do not apply).", s.label, fmtRates(rates), mr.cpu.describe())
			continue
		}
		sec.note("%s under 64 concurrent callers: runs %s; CPU (%% of one core): %s. %s. %s.", s.label, fmtRates(rates), mr.cpu.describe(), costs(mr, s.cs.names), diagnose(mr.cpu, s.cs.names))
	}
	tpRatio := meds[0] / meds[1]
	sec.add(row{name: "throughput: shim / FastAPI (median)", median: fmt.Sprintf("%.2f×", tpRatio), p99: "", n: "", target: "≥ 4×", met: boolp(tpRatio >= 4)})
	sec.note("The floor is bench/floorsrv: Go's net/http in a one-file container on the same bridge, checking the token, decoding the body and encoding the result; it bounds what any server could do here. Sequential latency at the median: shim %s, floor %s (the shim adds %s over the floor; FastAPI adds %s).",
		us(ls.median), us(lg.median), us(ls.median-lg.median), us(lf.median-lg.median))
	sec.note("Both Python servers are one Python 3.11 process on the same base image (bench/envs/shim and bench/envs/fastapi: the same Actor, body and token check); uvicorn runs on asyncio and h11 (Debian has no uvloop or httptools) with its access log off. Latency: %d rounds of %d sequential calls per side, rotating which side goes first; throughput: 64 goroutines with one net/http client per server, runs rotated likewise.",
		h.cfg.rounds, h.cfg.perRound/2)
	return nil
}

// Item 5: up to ready, and down, for 1, 4 and 16 replicas (library, real containers).
func itemUpDown(ctx context.Context, h *harness, sec *section) error {
	sec.title = "`up` to ready and `down`, 1 / 4 / 16 replicas (library, real containers)"
	tag, err := h.image(ctx, "shim")
	if err != nil {
		return err
	}
	sizes := []int{1, 4, 16}
	ups := map[int][]time.Duration{}
	downs := map[int][]time.Duration{}
	var cpuUp16, cpuDown16 sysAcc // CPU during rfenv's up and down of 16 replicas
	once := func(n int, key string) (time.Duration, time.Duration, error) {
		c, err := rfenv.New(rfenv.WithStateDir(h.stateDir))
		if err != nil {
			return 0, 0, err
		}
		defer c.Close()
		name := h.name(key)
		s0, self0 := sampleSys(), selfCPU()
		t0 := time.Now()
		env, err := c.Up(ctx, tag, rfenv.WithName(name), rfenv.WithReplicas(n))
		up := time.Since(t0)
		if err != nil {
			return 0, 0, fmt.Errorf("up %d: %w", n, err)
		}
		s1, self1 := sampleSys(), selfCPU()
		if n == 16 && key != "warm" {
			for _, in := range env.Record().Instances {
				cpuUp16.own += containerCPU(h.docker, in.ContainerID)
			}
			cpuUp16.hasOwn = true
		}
		env.Release()
		t1 := time.Now()
		if _, err := c.Down(ctx, []string{name}, rfenv.DownOptions{}); err != nil {
			return 0, 0, fmt.Errorf("down %d: %w", n, err)
		}
		down := time.Since(t1)
		if n == 16 && key != "warm" {
			cpuUp16.add(s0, s1, self1-self0)
			cpuDown16.add(s1, sampleSys(), selfCPU()-self1)
			cpuUp16.replicas += n
			cpuDown16.replicas += n
		}
		return up, down, nil
	}
	if _, _, err := once(1, "warm"); err != nil { // the first container of an image pays extra setup
		return err
	}
	floorUps := map[int][]time.Duration{}
	floorDowns := map[int][]time.Duration{}
	for r := 0; r < h.cfg.upReps; r++ {
		for _, n := range sizes {
			u, d, err := once(n, fmt.Sprintf("up%d", n))
			if err != nil {
				return err
			}
			h.vlogf("up %d: %s, down: %s", n, u, d)
			ups[n] = append(ups[n], u)
			downs[n] = append(downs[n], d)
			if u, d, err = h.bareDocker(ctx, tag, n); err != nil {
				return err
			}
			h.vlogf("bare docker %d: up %s, down: %s", n, u, d)
			floorUps[n] = append(floorUps[n], u)
			floorDowns[n] = append(floorDowns[n], d)
		}
	}
	upTarget := map[int]time.Duration{1: 600 * time.Millisecond, 16: 4 * time.Second}
	downTarget := map[int]time.Duration{16: 1500 * time.Millisecond}
	add := func(label string, n int, ds []time.Duration, targets map[int]time.Duration) {
		d := distOf(ds)
		rw := row{name: fmt.Sprintf("%s, %d replica%s", label, n, map[bool]string{true: "s", false: ""}[n > 1]), median: ms(d.median), p99: ms(d.p99), n: strconv.Itoa(d.n), target: "—"}
		if t, ok := targets[n]; ok {
			rw.target, rw.met = "< "+ms(t), boolp(d.median < t)
		}
		sec.add(rw)
	}
	for _, n := range sizes {
		add("up to ready", n, ups[n], upTarget)
		add("floor: bare Docker create + start + first /health", n, floorUps[n], nil)
	}
	for _, n := range sizes {
		add("down", n, downs[n], downTarget)
		add("floor: bare Docker stop + remove", n, floorDowns[n], nil)
	}
	sec.note("Each repetition: a new library client, Up (create, start, wait for /health on every replica, record the state), then Down (remove in parallel, forget). p99 of %d repetitions is their maximum. Sizes interleaved within each repetition; one untimed warm-up up/down first.", h.cfg.upReps)
	sec.note("CPU while rfenv brought up 16 replicas (%% of one core, over %s): %s.", ms(cpuUp16.wall), cpuUp16.describe())
	sec.note("CPU while rfenv took down 16 replicas (%% of one core, over %s): %s.", ms(cpuDown16.wall), cpuDown16.describe())
	sec.note("The floor rows make the same Docker calls rfenv makes (create with the same image and settings, start, inspect, then poll GET /health every 5 ms; stop with a 2 s grace, then remove), in parallel per replica, with none of rfenv's bookkeeping: what Docker and the shim's Python start cost on this machine. rfenv's overhead is the difference.")
	return nil
}

// Item 6: build cold (no cache), unchanged (cache), and after editing env.py.
func itemBuild(ctx context.Context, h *harness, sec *section) error {
	sec.title = "`build` of examples/calculator: cold, unchanged, after an edit of env.py"
	src := filepath.Join(h.cfg.root, "examples", "calculator")
	dir := filepath.Join(h.tmp, "calculator")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			data, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
				return err
			}
		}
	}
	h.mu.Lock()
	h.images[buildTag] = nil
	h.mu.Unlock()
	var prog *buildProgress
	doBuild := func(noCache bool) (time.Duration, error) {
		prog = &buildProgress{}
		t0 := time.Now()
		res, err := h.client.Build(ctx, nil, build.Options{Dir: dir, Tag: buildTag, NoCache: noCache, BaseImage: h.cfg.baseImage, Progress: prog, ProgressMode: "rawjson"})
		d := time.Since(t0)
		if err == nil && len(res) > 0 {
			h.mu.Lock()
			h.images[buildTag] = res[0].Result
			h.mu.Unlock()
		}
		return d, err
	}
	if _, err := doBuild(false); err != nil { // warm-up
		return err
	}
	envPy := filepath.Join(dir, "env.py")
	var cold, same, edited, exports, commits []time.Duration
	exportStages := 0
	for r := 0; r < h.cfg.buildReps; r++ {
		d, err := doBuild(true)
		if err != nil {
			return err
		}
		cold = append(cold, d)
		if d, err = doBuild(false); err != nil {
			return err
		}
		same = append(same, d)
		f, err := os.OpenFile(envPy, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(f, "\n\ndef edited_%d_%d():\n    return %d\n", r, time.Now().UnixNano(), r)
		f.Close()
		if d, err = doBuild(false); err != nil {
			return err
		}
		edited = append(edited, d)
		export, stages := prog.export()
		exports = append(exports, export)
		exportStages = stages
		if d, err = h.commitFloor(ctx); err != nil {
			return err
		}
		commits = append(commits, d)
	}
	for _, x := range []struct {
		label  string
		ds     []time.Duration
		target time.Duration
	}{
		{"cold (--no-cache; base image local)", cold, 0},
		{"unchanged (cache)", same, 0},
		{"after editing env.py", edited, 1500 * time.Millisecond},
		{"floor: `docker commit` of a one-file change to the base image (one layer)", commits, 0},
	} {
		d := distOf(x.ds)
		name := "build " + x.label
		if strings.HasPrefix(x.label, "floor") {
			name = x.label
		}
		rw := row{name: name, median: ms(d.median), p99: ms(d.p99), n: strconv.Itoa(d.n), target: "—"}
		if x.target > 0 {
			rw.target, rw.met = "< "+ms(x.target), boolp(d.median < x.target)
		}
		sec.add(rw)
	}
	ed, ex, cm := distOf(edited), distOf(exports), distOf(commits)
	sec.note("After an edit, BuildKit's \"exporting to image\" steps (the daemon committing the new layers: %d of them, one per stage) take %s of the %s at the median (%.0f%%). Committing one tiny layer with plain `docker commit` takes %s on this daemon: %s.",
		exportStages, ms(ex.median), ms(ed.median), 100*float64(ex.median)/float64(ed.median), ms(cm.median), h.storageNote(ctx))
	sec.note("Library Client.Build (both stages: the user's Dockerfile, then the shim layer) on the local daemon's BuildKit; the CLI adds its process start (item 2). Cold means BuildKit's cache is bypassed for stage 1; the FROM image is local (no registry here). p99 of %d builds is their maximum.", h.cfg.buildReps)
	return nil
}

// Item 7: SSH, through `go test -bench BenchmarkSSH ./bench` (sshd.Start needs a testing.TB).
func itemSSH(ctx context.Context, h *harness, sec *section) error {
	sec.title = "SSH: calls through the tunnel vs direct (real OpenSSH server on 127.0.0.1)"
	h.mu.Lock()
	if _, ok := h.images[shimTag]; !ok {
		h.images[shimTag] = nil // the benchmark builds it: remove it at the end like the others
	}
	h.mu.Unlock()
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkSSH$", "-benchtime", h.cfg.sshTime, "-count", "1", "-timeout", "20m", "./bench"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = h.cfg.root
	cmd.Env = append(os.Environ(), "RFENV_BASE_IMAGE="+h.cfg.baseImage)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	h.vlogf("go %s:\n%s", strings.Join(args, " "), out.String())
	if err != nil {
		return fmt.Errorf("go %s: %v:\n%s", strings.Join(args, " "), err, out.String())
	}
	m := parseBench(out.String())
	lat, ok := m["BenchmarkSSH/latency"]
	if !ok {
		return fmt.Errorf("no BenchmarkSSH/latency result in:\n%s", out.String())
	}
	conc, ok := m["BenchmarkSSH/concurrent200"]
	if !ok {
		return fmt.Errorf("no BenchmarkSSH/concurrent200 result in:\n%s", out.String())
	}
	d := func(v float64) time.Duration { return time.Duration(v * float64(time.Microsecond)) }
	n := fmt.Sprintf("%.0f", lat["N"])
	sec.add(row{name: "direct (same container, same pool code, plain TCP)", median: us(d(lat["direct-median-us"])), p99: us(d(lat["direct-p99-us"])), n: n, target: "—"})
	sec.add(row{name: "through the SSH tunnel (rfenv's ssh:// host)", median: us(d(lat["tunnel-median-us"])), p99: us(d(lat["tunnel-p99-us"])), n: n, target: "—"})
	added := d(lat["tunnel-median-us"] - lat["direct-median-us"])
	sec.add(row{name: "added by the tunnel (median)", median: us(added), p99: us(d(lat["tunnel-p99-us"] - lat["direct-p99-us"])), n: n, target: "≤ 0.5 ms", met: boolp(added <= 500*time.Microsecond)})
	calls := conc["calls"]
	fails := conc["failures"]
	sec.add(row{name: "200 concurrent calls through SSH: failures", median: fmt.Sprintf("%.0f of %.0f", fails, calls), p99: us(d(conc["burst-p99-us"])) + " per burst", n: fmt.Sprintf("%.0f bursts", conc["N"]), target: "0 failures", met: boolp(fails == 0 && calls > 0)})
	sec.note("`go test -run '^$' -bench '^BenchmarkSSH$' -benchtime %s ./bench`: one replica brought up through ssh://root@127.0.0.1:PORT (Debian's sshd, pkg/testutil/sshd), then each op calls it once directly and once through the tunnel, alternating which goes first.", h.cfg.sshTime)
	sec.note("Concurrency: 200 goroutines call `sleep(0.02)` at once through the tunnel, burst after burst; each run of the sub-benchmark starts on a fresh pool, so its first burst opens 200 direct-tcpip channels at once. Burst median %s, p99 %s (the floor is the 20 ms sleep).", us(d(conc["burst-median-us"])), us(d(conc["burst-p99-us"])))
	return nil
}

// parseBench reads `go test -bench` output: name (without -GOMAXPROCS) → unit → value, plus "N".
func parseBench(out string) map[string]map[string]float64 {
	res := map[string]map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		n, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		m := map[string]float64{"N": n}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			m[f[i+1]] = v
		}
		res[name] = m
	}
	return res
}

// Item 8: a batch of 10,000 calls through the real binary, next to the same batch run in process
// (pkg/batch over the library's pool) and to 32 goroutines calling the pool directly, interleaved.
func itemBatch(ctx context.Context, h *harness, sec *section) error {
	sec.title = "`rfenv call NAME echo --batch - --concurrency 32`, 10,000 trivial calls"
	bin, err := h.binary(ctx)
	if err != nil {
		return err
	}
	env, err := h.env(ctx, "one", "shim", 1)
	if err != nil {
		return err
	}
	const total, conc = 10000, 32
	input := strings.Repeat(trivialLine+"\n", total)
	cs := h.sampler("shim", env)
	type kind struct {
		label   string
		run     func() (time.Duration, time.Duration, error) // wall, CPU of the caller
		walls   []time.Duration
		details []string
	}
	process := func() (time.Duration, time.Duration, error) {
		cmd := exec.CommandContext(ctx, bin, "call", env.Name(), trivialMethod, "--batch", "-", "--concurrency", strconv.Itoa(conc))
		cmd.Env = append(os.Environ(), "RFENV_STATE_DIR="+h.stateDir, "NO_COLOR=1")
		cmd.Stdin = strings.NewReader(input)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		t0 := time.Now()
		err := cmd.Run()
		wall := time.Since(t0)
		if err != nil {
			return 0, 0, fmt.Errorf("batch: %v: %s", err, errb.Bytes())
		}
		if lines := bytes.Count(out.Bytes(), []byte("\n")); lines != total || bytes.Contains(out.Bytes(), []byte(`"error"`)) {
			return 0, 0, fmt.Errorf("batch wrote %d lines (want %d) or errors: %.300s", lines, total, out.Bytes())
		}
		return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
	}
	inProcBatch := func() (time.Duration, time.Duration, error) {
		c, err := rfenv.New(rfenv.WithStateDir(h.stateDir))
		if err != nil {
			return 0, 0, err
		}
		defer c.Close()
		e, err := c.Get(ctx, env.Name())
		if err != nil {
			return 0, 0, err
		}
		defer e.Release()
		var out bytes.Buffer
		self0 := selfCPU()
		t0 := time.Now()
		sum, err := batch.Run(ctx, e.Pool(), strings.NewReader(input), &out, batch.Options{Method: trivialMethod, Concurrency: conc})
		wall := time.Since(t0)
		if err != nil {
			return 0, 0, err
		}
		if sum.Succeeded != total {
			return 0, 0, fmt.Errorf("in-process batch: %d of %d succeeded", sum.Succeeded, total)
		}
		return wall, selfCPU() - self0, nil
	}
	direct := func() (time.Duration, time.Duration, error) {
		c, err := rfenv.New(rfenv.WithStateDir(h.stateDir))
		if err != nil {
			return 0, 0, err
		}
		defer c.Close()
		e, err := c.Get(ctx, env.Name())
		if err != nil {
			return 0, 0, err
		}
		defer e.Release()
		p := e.Pool()
		var next atomic.Int64
		g, gctx := errgroup.WithContext(ctx)
		self0 := selfCPU()
		t0 := time.Now()
		for w := 0; w < conc; w++ {
			g.Go(func() error {
				for next.Add(1) <= total {
					if _, err := p.Call(gctx, trivialReq); err != nil {
						return err
					}
				}
				return nil
			})
		}
		err = g.Wait()
		return time.Since(t0), selfCPU() - self0, err
	}
	kinds := []*kind{
		{label: "10,000 calls, `rfenv call --batch - --concurrency 32` (whole process)", run: process},
		{label: "same batch in process: pkg/batch over the library pool (reference)", run: inProcBatch},
		{label: "same 10,000 calls in process: 32 goroutines calling pool.Call (reference)", run: direct},
	}
	for r := 0; r < h.cfg.runs; r++ {
		for j := range kinds {
			k := kinds[(j+r)%len(kinds)]
			before := cs.sample()
			wall, callerCPU, err := k.run()
			cpu := cs.sample().sub(before)
			if err != nil {
				return err
			}
			k.walls = append(k.walls, wall)
			k.details = append(k.details, fmt.Sprintf("%s (caller %.0f%% CPU, shim %.0f%%, machine busy %.0f%%)", ms(wall), 100*callerCPU.Seconds()/wall.Seconds(), cpu.pct(cpu.containers["shim"]), 100*(cpu.machine.total-cpu.machine.idle)/cpu.wall.Seconds()))
		}
	}
	for _, k := range kinds {
		w := distOf(k.walls)
		sec.add(row{name: k.label, median: rate(total / w.median.Seconds()), p99: ms(w.p99) + " wall (slowest)", n: fmt.Sprintf("%d runs", w.n), target: "—"})
		sec.note("%s: %s.", k.label, strings.Join(k.details, "; "))
	}
	return nil
}

// bareDocker starts n containers of tag with the Docker API alone (what `up` does, without rfenv),
// waits for each shim's first 200 on /health, then stops and removes them: the floor of up and down.
func (h *harness) bareDocker(ctx context.Context, tag string, n int) (up, down time.Duration, err error) {
	ids := make([]string, n)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	initTrue := true
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < n; i++ {
		g.Go(func() error {
			res, err := h.docker.ContainerCreate(gctx, client.ContainerCreateOptions{
				Name: fmt.Sprintf("%s-%d", h.name("floor"), i),
				Config: &container.Config{
					Image:  tag,
					Env:    []string{"RFENV_TOKEN=floor", "RFENV_PORT=8000", "RFENV_REPLICA=" + strconv.Itoa(i)},
					Labels: map[string]string{containers.LabelState: state.StateID(h.stateDir)},
				},
				HostConfig: &container.HostConfig{
					RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
					Init:          &initTrue,
				},
			})
			if err != nil {
				return err
			}
			ids[i] = res.ID
			if _, err := h.docker.ContainerStart(gctx, res.ID, client.ContainerStartOptions{}); err != nil {
				return err
			}
			ins, err := h.docker.ContainerInspect(gctx, res.ID, client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			addr := containers.Address(ins.Container, "")
			url := "http://" + net.JoinHostPort(addr.String(), "8000") + "/health"
			for gctx.Err() == nil {
				req, _ := http.NewRequestWithContext(gctx, http.MethodGet, url, nil)
				if resp, err := hc.Do(req); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return nil
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			return gctx.Err()
		})
	}
	err = g.Wait()
	up = time.Since(t0)
	t1 := time.Now()
	var rg errgroup.Group
	for _, id := range ids {
		if id == "" {
			continue
		}
		rg.Go(func() error {
			grace := 2
			rctx := context.WithoutCancel(ctx)
			_, _ = h.docker.ContainerStop(rctx, id, client.ContainerStopOptions{Timeout: &grace})
			_, err := h.docker.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true})
			return err
		})
	}
	if rerr := rg.Wait(); err == nil {
		err = rerr
	}
	return up, time.Since(t1), err
}

// buildProgress reads BuildKit's rawjson progress and keeps each vertex's start and end.
type buildProgress struct {
	buf      []byte
	vertices map[string]vertex
}

type vertex struct {
	name               string
	started, completed time.Time
}

func (p *buildProgress) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		line := p.buf[:i]
		p.buf = p.buf[i+1:]
		var st struct {
			Vertexes []struct {
				Digest    string     `json:"digest"`
				Name      string     `json:"name"`
				Started   *time.Time `json:"started"`
				Completed *time.Time `json:"completed"`
			} `json:"vertexes"`
		}
		if json.Unmarshal(line, &st) != nil {
			continue
		}
		if p.vertices == nil {
			p.vertices = map[string]vertex{}
		}
		for _, v := range st.Vertexes {
			if v.Started == nil || v.Completed == nil {
				continue
			}
			// Each stage is its own solve: key by start time too, in case digests repeat.
			p.vertices[v.Digest+v.Started.String()] = vertex{name: v.Name, started: *v.Started, completed: *v.Completed}
		}
	}
	return len(b), nil
}

// export is the time spent in "exporting to image" vertices, and how many there were.
func (p *buildProgress) export() (time.Duration, int) {
	var d time.Duration
	n := 0
	for _, v := range p.vertices {
		if strings.HasPrefix(v.name, "exporting to image") {
			d += v.completed.Sub(v.started)
			n++
		}
	}
	return d, n
}

// storageNote names the daemon's storage driver and what it means for layer commits.
func (h *harness) storageNote(ctx context.Context) string {
	info, err := h.docker.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "storage driver unknown"
	}
	switch drv := info.Info.Driver; drv {
	case "overlay2":
		return "storage driver overlay2 (diffs only the upper directory)"
	case "fuse-overlayfs", "vfs":
		return "storage driver " + drv + ", which has no native diff: dockerd compares the whole filesystem of each new layer with its parent's (naive diff), so every layer commit costs time in proportion to the image's size, however small the change"
	default:
		return "storage driver " + drv
	}
}

// commitFloor times `docker commit` of a container of the base image that changed one file: what
// committing one small layer costs on this daemon's storage driver, whatever builds it.
func (h *harness) commitFloor(ctx context.Context) (time.Duration, error) {
	res, err := h.docker.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: h.name("commit") + "-" + randSuffix(),
		Config: &container.Config{
			Image:  h.cfg.baseImage,
			Cmd:    []string{"sh", "-c", "echo edited > /edited"},
			Labels: map[string]string{containers.LabelState: state.StateID(h.stateDir)},
		},
	})
	if err != nil {
		return 0, err
	}
	defer h.docker.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
	wait := h.docker.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := h.docker.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return 0, err
	}
	select {
	case <-wait.Result:
	case err := <-wait.Error:
		return 0, err
	}
	ref := "rfenv-bench-commit:" + h.suffix
	t0 := time.Now()
	if _, err := h.docker.ContainerCommit(ctx, res.ID, client.ContainerCommitOptions{Reference: ref}); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	_, err = h.docker.ImageRemove(context.WithoutCancel(ctx), ref, client.ImageRemoveOptions{PruneChildren: true})
	return d, err
}
