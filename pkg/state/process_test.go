package state

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

// Cross-process tests re-execute this test binary as TestHelperProcess with helperEnv set to a
// mode. Every helper prints "ready", then waits for its stdin to close: the parent closes all of
// them at once, so the helpers really contend.
const (
	helperEnv      = "RFENV_STATE_TEST_HELPER"
	helperDirEnv   = "RFENV_STATE_TEST_DIR"
	helperIDEnv    = "RFENV_STATE_TEST_ID"
	helperCountEnv = "RFENV_STATE_TEST_COUNT"

	procs          = 50
	updatesPerProc = 10
	countsPerProc  = 100
)

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return // not a helper: nothing to do in a normal run
	}
	err := helperMain(mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

func helperMain(mode string) error {
	s, err := Open(os.Getenv(helperDirEnv))
	if err != nil {
		return err
	}
	id, _ := strconv.Atoi(os.Getenv(helperIDEnv))
	n, _ := strconv.Atoi(os.Getenv(helperCountEnv))
	// Generous: on a loaded CI machine 50 processes contend for two cores; the lock's own waits are
	// what the tests measure, not this bound.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	if mode == "hold" {
		l := flock.New(s.LockPath())
		if err := l.Lock(); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil { // barrier: wait for EOF
		return err
	}

	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	switch mode {
	case "hold":
		return nil // exiting releases the lock
	case "update":
		for k := range n {
			if err := s.Update(ctx, func(f *File) error { return helperUpdate(f, id, k, n) }); err != nil {
				return err
			}
		}
	case "counter":
		for range n {
			v, err := s.NextCounter(ctx, "rr")
			if err != nil {
				return err
			}
			fmt.Fprintln(out, v)
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	return nil
}

// helperUpdate is helper id's k-th change: it adds its own entry c<id>-<k> and removes its entry
// of two steps back (distinct names), bumps a shared counter and records (id, k) in a shared list
// (one shared name), and toggles toggle-<k%3> (shared names added and removed by everybody).
func helperUpdate(f *File, id, k, n int) error {
	mine := fmt.Sprintf("c%d-%d", id, k)
	if _, ok := f.Environments[mine]; ok {
		return fmt.Errorf("%s already exists: an update was duplicated", mine)
	}
	f.Environments[mine] = &Environment{Name: mine, Port: k}
	if k >= 2 {
		old := fmt.Sprintf("c%d-%d", id, k-2)
		if _, ok := f.Environments[old]; !ok {
			return fmt.Errorf("%s is missing: an update was lost", old)
		}
		delete(f.Environments, old)
	}
	sh := f.Environments["shared"]
	if sh == nil {
		sh = &Environment{Name: "shared"}
		f.Environments["shared"] = sh
	}
	sh.Port++
	sh.Instances = append(sh.Instances, Instance{Index: id*n + k})
	tg := fmt.Sprintf("toggle-%d", k%3)
	if _, ok := f.Environments[tg]; ok {
		delete(f.Environments, tg)
	} else {
		f.Environments[tg] = &Environment{Name: tg}
	}
	return nil
}

type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr strings.Builder
}

// startHelpers starts n helpers in mode and returns once all of them printed "ready".
func startHelpers(t *testing.T, dir, mode string, n, count int) []*helper {
	t.Helper()
	hs := make([]*helper, n)
	for i := range hs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			helperEnv+"="+mode,
			helperDirEnv+"="+dir,
			helperIDEnv+"="+strconv.Itoa(i),
			helperCountEnv+"="+strconv.Itoa(count),
		)
		h := &helper{cmd: cmd}
		cmd.Stderr = &h.stderr
		var err error
		if h.stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		pr, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		h.stdout = bufio.NewReader(pr)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		hs[i] = h
	}
	for i, h := range hs {
		line, err := h.stdout.ReadString('\n')
		if line != "ready\n" {
			t.Fatalf("helper %d: %q, %v; stderr: %s", i, line, err, h.stderr.String())
		}
	}
	return hs
}

// finish releases the helpers and returns each one's remaining stdout lines.
func finish(t *testing.T, hs []*helper) [][]string {
	t.Helper()
	for _, h := range hs {
		_ = h.stdin.Close()
	}
	outs := make([][]string, len(hs))
	for i, h := range hs {
		rest, _ := io.ReadAll(h.stdout)
		if err := h.cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v; stderr: %s", i, err, h.stderr.String())
		}
		outs[i] = strings.Fields(string(rest))
	}
	return outs
}

func TestUpdateAcrossProcesses(t *testing.T) {
	s := openTemp(t)
	finish(t, startHelpers(t, s.Dir(), "update", procs, updatesPerProc))
	if t.Failed() {
		return
	}

	f, err := s.Load(context.Background()) // also asserts the file parses
	if err != nil {
		t.Fatal(err)
	}
	total := procs * updatesPerProc
	sh := f.Environments["shared"]
	if sh == nil || sh.Port != total {
		t.Fatalf("shared counter = %+v, want %d (lost updates)", sh, total)
	}
	idx := make([]int, 0, len(sh.Instances))
	for _, in := range sh.Instances {
		idx = append(idx, in.Index)
	}
	slices.Sort(idx)
	for i, v := range idx {
		if v != i {
			t.Fatalf("shared list: %d at position %d (duplicated or lost update); len %d, want %d", v, i, len(idx), total)
		}
	}
	if len(idx) != total {
		t.Fatalf("shared list has %d entries, want %d", len(idx), total)
	}

	want := []string{"shared"}
	for id := range procs {
		want = append(want, fmt.Sprintf("c%d-%d", id, updatesPerProc-2), fmt.Sprintf("c%d-%d", id, updatesPerProc-1))
	}
	for j := range 3 {
		toggles := 0
		for k := range updatesPerProc {
			if k%3 == j {
				toggles += procs
			}
		}
		if toggles%2 == 1 {
			want = append(want, fmt.Sprintf("toggle-%d", j))
		}
	}
	slices.Sort(want)
	if got := f.Names(); !slices.Equal(got, want) {
		t.Fatalf("environments:\n got %v\nwant %v", got, want)
	}
	if _, err := os.Stat(s.Path() + tmpSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file left behind: %v", err)
	}
}

func TestNextCounterAcrossProcesses(t *testing.T) {
	s := openTemp(t)
	outs := finish(t, startHelpers(t, s.Dir(), "counter", procs, countsPerProc))
	if t.Failed() {
		return
	}
	total := procs * countsPerProc
	seen := make([]bool, total)
	for i, lines := range outs {
		if len(lines) != countsPerProc {
			t.Fatalf("helper %d printed %d values, want %d", i, len(lines), countsPerProc)
		}
		prev := int64(-1)
		for _, l := range lines {
			v, err := strconv.ParseInt(l, 10, 64)
			if err != nil || v < 0 || v >= int64(total) {
				t.Fatalf("helper %d: value %q out of range", i, l)
			}
			if seen[v] {
				t.Fatalf("value %d returned twice", v)
			}
			if v <= prev {
				t.Fatalf("helper %d: values not increasing (%d after %d)", i, v, prev)
			}
			seen[v], prev = true, v
		}
	}
	if got, err := s.NextCounter(context.Background(), "rr"); err != nil || got != uint64(total) {
		t.Fatalf("counter after the helpers = %d, %v; want %d", got, err, total)
	}
}

func TestUpdateWaitsForAnotherProcess(t *testing.T) {
	s := openTemp(t)
	put(t, s, &Environment{Name: "a"})
	hs := startHelpers(t, s.Dir(), "hold", 1, 0) // holds the lock once ready

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.Update(ctx, func(*File) error { t.Error("callback ran while another process held the lock"); return nil })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), s.LockPath()) {
		t.Fatalf("Update while another process holds the lock: %v", err)
	}
	// Readers are not blocked by a writer's lock.
	if _, err := s.Get(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}

	finish(t, hs) // the helper exits, which releases the lock
	if err := s.Update(context.Background(), func(f *File) error { f.Environments["b"] = &Environment{}; return nil }); err != nil {
		t.Fatal(err)
	}
}
