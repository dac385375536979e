// Command bench measures rfenv against the limits it is meant to reach (issue 6) and writes
// BENCHMARKS.md: the machine, the commit, and for each item the median and p99 of repeated runs, its
// target and whether it was met.
//
//	go run ./bench -out BENCHMARKS.md            # everything (what `make bench` runs)
//	go run ./bench -items 1,3 -duration 10s      # some items, longer throughput runs
//	go run ./bench -quick                        # a fast smoke run (few repetitions)
//
// It needs the Docker daemon, the base image (`make base-image`) and, for items 2 and 8, the rfenv
// binary (`make build`; built into a temporary directory when -bin does not exist). Item 7 runs
// `go test -bench BenchmarkSSH ./bench` (a real OpenSSH server, /usr/sbin/sshd) and parses its output.
//
// Comparisons (library vs raw HTTP, shim vs FastAPI, tunnel vs direct) are measured side by side in
// the same run, interleaved in rounds, so that drift on a shared machine hits both sides alike.
// Every container is started under a fresh state directory and removed at the end (also on Ctrl-C);
// the images it builds are removed unless -keep-images.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	out        string
	items      map[int]bool
	quick      bool
	duration   time.Duration // each throughput run
	runs       int           // repeated throughput / batch runs
	rounds     int           // interleaved latency rounds
	perRound   int           // calls per side per round
	procRuns   int           // `rfenv call` process runs
	upReps     int           // up/down repetitions per size
	buildReps  int           // build repetitions per kind
	sshTime    string        // -benchtime of the SSH latency benchmark
	bin        string
	keepImages bool
	root       string
	baseImage  string
	verbose    bool
}

func main() {
	cfg := config{}
	var items string
	flag.StringVar(&cfg.out, "out", "", "write the report (markdown) to this file; the table is printed either way")
	flag.StringVar(&items, "items", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", "which items to run (comma-separated numbers)")
	flag.BoolVar(&cfg.quick, "quick", false, "few repetitions and 1 s throughput runs (a smoke test, not numbers to publish)")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "length of each throughput run")
	flag.IntVar(&cfg.runs, "runs", 5, "repeated throughput and batch runs per configuration (the median is reported)")
	flag.IntVar(&cfg.rounds, "rounds", 20, "interleaved rounds of the latency comparisons")
	flag.IntVar(&cfg.perRound, "per-round", 250, "sequential calls per side in each latency round")
	flag.IntVar(&cfg.procRuns, "proc-runs", 200, "runs of each process in items 2 and 16 (rfenv call, rfenv version, ...)")
	flag.IntVar(&cfg.upReps, "up-reps", 3, "up/down repetitions per replica count")
	flag.IntVar(&cfg.buildReps, "build-reps", 5, "repetitions of each kind of build")
	flag.StringVar(&cfg.sshTime, "ssh-benchtime", "3s", "-benchtime of BenchmarkSSH (item 7)")
	flag.StringVar(&cfg.bin, "bin", "bin/rfenv", "the rfenv binary for items 2 and 8 (relative to the repository root)")
	flag.BoolVar(&cfg.keepImages, "keep-images", false, "keep the images the benchmark builds")
	flag.BoolVar(&cfg.verbose, "v", false, "log progress details")
	flag.Parse()

	cfg.items = map[int]bool{}
	for _, s := range strings.Split(items, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 16 {
			fatalf("-items: %q is not an item number 1..16", s)
		}
		cfg.items[n] = true
	}
	if cfg.quick {
		cfg.duration = min(cfg.duration, time.Second)
		cfg.runs = min(cfg.runs, 1)
		cfg.rounds = min(cfg.rounds, 4)
		cfg.perRound = min(cfg.perRound, 100)
		cfg.procRuns = min(cfg.procRuns, 10)
		cfg.upReps = min(cfg.upReps, 1)
		cfg.buildReps = min(cfg.buildReps, 1)
		cfg.sshTime = "500ms"
	}
	root, err := repoRoot()
	if err != nil {
		fatalf("%v", err)
	}
	cfg.root = root
	if !filepath.IsAbs(cfg.bin) {
		cfg.bin = filepath.Join(root, cfg.bin)
	}
	cfg.baseImage = os.Getenv("RFENV_BASE_IMAGE")
	if cfg.baseImage == "" {
		cfg.baseImage = "rfenv-python:bookworm"
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg)
	if rep != nil {
		text := rep.Table()
		fmt.Println()
		fmt.Print(text)
		if cfg.out != "" {
			out := cfg.out
			if !filepath.IsAbs(out) {
				out = filepath.Join(root, out)
			}
			if werr := os.WriteFile(out, []byte(rep.Markdown()), 0o644); werr != nil {
				fatalf("write %s: %v", out, werr)
			}
			fmt.Fprintf(os.Stderr, "wrote %s\n", out)
		}
	}
	if err != nil {
		fatalf("%v", err)
	}
}

func run(ctx context.Context, cfg config) (*report, error) {
	h, err := newHarness(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer h.cleanup()
	rep := &report{machine: machineInfo(ctx, h.docker, cfg.root), cfg: cfg, started: time.Now()}
	h.logf("machine: %s, %d cores, %s, kernel %s, docker %s, load %s",
		rep.machine.CPU, rep.machine.Cores, rep.machine.Memory, rep.machine.Kernel, rep.machine.Docker, rep.machine.LoadStart)

	type item struct {
		n   int
		run func(context.Context, *harness, *section) error
	}
	all := []item{
		{1, itemLatency}, {2, itemProcess}, {3, itemThroughput}, {4, itemShimVsFastAPI},
		{5, itemUpDown}, {6, itemBuild}, {7, itemSSH}, {8, itemBatch},
		{9, itemPythonLatency}, {10, itemPythonGather}, // bench/python.go
		{11, itemDev}, // bench/dev.go
		// issues 13 and 14: bench/burst.go, remote.go, overdue.go, sessions.go
		{12, itemBurst}, {13, itemMany}, {14, itemRemoteBurst}, {15, itemOverdue}, {16, itemSessions},
	}
	var failed []string
	for _, it := range all {
		if !cfg.items[it.n] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		sec := &section{n: it.n}
		rep.sections = append(rep.sections, sec)
		h.logf("item %d ...", it.n)
		t0 := time.Now()
		if err := it.run(ctx, h, sec); err != nil {
			sec.err = err
			failed = append(failed, fmt.Sprintf("item %d: %v", it.n, err))
			h.logf("item %d failed: %v", it.n, err)
		}
		h.logf("item %d done in %s", it.n, time.Since(t0).Round(time.Millisecond))
	}
	rep.machine.LoadEnd = loadAvg()
	rep.finished = time.Now()
	slices.SortFunc(rep.sections, func(a, b *section) int { return a.n - b.n })
	if ctx.Err() != nil {
		return rep, fmt.Errorf("interrupted")
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return rep, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "bench", "envs")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run from inside the rfenv repository (no go.mod with bench/envs above %s)", dir)
		}
		dir = parent
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
	os.Exit(1)
}
