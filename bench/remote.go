package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rfenv/rfenv/pkg/testutil/kubecluster"
)

// remoteBurstCalls and remoteBurstSleep: each op of the remote burst benchmarks makes this many
// calls of sleep(remoteBurstSleep) at once over 2 replicas, all within the default budget of 2 × 1024,
// so every call is on the wire through the one host at the same time.
const (
	remoteBurstCalls = 2000
	remoteBurstSleep = 1.0
)

// k8sBenchEnv gates BenchmarkK8sBurst: the bench harness sets it when the cluster's binaries are
// cached (it never builds Kubernetes for a benchmark).
const k8sBenchEnv = "RFENV_BENCH_K8S"

// Item 14 (issue 13): 2,000 concurrent calls through one SSH host and through the Kubernetes API
// server, run as `go test -bench` (sshd.Start and kubecluster need a testing.TB): 0 failures.
func itemRemoteBurst(ctx context.Context, h *harness, sec *section) error {
	sec.title = fmt.Sprintf("%s concurrent calls through one SSH host and through the Kubernetes API server", commas(remoteBurstCalls))
	h.mu.Lock()
	if _, ok := h.images[shimTag]; !ok {
		h.images[shimTag] = nil // the benchmarks build it: remove it at the end like the others
	}
	h.mu.Unlock()
	benchtime := "3x"
	if h.cfg.quick {
		benchtime = "1x"
	}
	k8s, why := k8sCached()
	pattern := "^BenchmarkSSHBurst$"
	if k8s {
		pattern = "^Benchmark(SSHBurst|K8sBurst)$"
	}
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchtime", benchtime, "-count", "1", "-timeout", "30m", "./bench"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = h.cfg.root
	cmd.Env = append(os.Environ(), "RFENV_BASE_IMAGE="+h.cfg.baseImage)
	if k8s {
		cmd.Env = append(cmd.Env, k8sBenchEnv+"=1")
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	h.vlogf("go %s (%s):\n%s", strings.Join(args, " "), time.Since(t0).Round(time.Second), out.String())
	m := parseBench(out.String())
	add := func(key, label string) {
		r, ok := m[key]
		if !ok {
			sec.add(row{name: label + ": failures", median: "no result", target: "0 failures", met: boolp(false)})
			return
		}
		d := func(v float64) time.Duration { return time.Duration(v * float64(time.Microsecond)) }
		sec.add(row{name: label + ": failures", median: fmt.Sprintf("%.0f of %.0f", r["failures"], r["calls"]),
			p99: ms(d(r["worst-burst-us"])) + " slowest burst", n: fmt.Sprintf("%.0f bursts", r["N"]), target: "0 failures", met: boolp(r["failures"] == 0 && r["calls"] > 0)})
		sec.add(row{name: label + ": wall of one burst", median: ms(d(r["first-burst-us"])) + " (first, fresh connections)", p99: ms(d(r["worst-burst-us"])) + " (slowest)", n: fmt.Sprintf("%.0f bursts", r["N"]), target: fmt.Sprintf("— (floor %g s)", remoteBurstSleep)})
	}
	add("BenchmarkSSHBurst", "through one SSH host (ssh://, real OpenSSH on 127.0.0.1), 2 replicas")
	if k8s {
		add("BenchmarkK8sBurst", "through the Kubernetes API server (port-forward), 2 pods on the test cluster")
	} else {
		sec.add(row{name: "through the Kubernetes API server", median: "not run", target: "0 failures"})
		sec.note("Kubernetes not measured: %s. Build them with `make k8s-binaries`, then run item 14 again.", why)
	}
	sec.note("`go test -run '^$' -bench '%s' -benchtime %s ./bench` (bench/burst_remote_test.go): each op makes %s calls of `sleep(%g)` (bench/envs/shim) at once over 2 replicas; the default budget (2 × 1024) lets every call onto the wire at once, so the SSH connection carries %s direct-tcpip channels together, and the API server as many port-forward streams.",
		pattern, benchtime, commas(remoteBurstCalls), remoteBurstSleep, commas(remoteBurstCalls))
	if err != nil {
		tail := out.String()
		if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		return fmt.Errorf("go %s: %v:\n%s", strings.Join(args, " "), err, tail)
	}
	return nil
}

// k8sCached reports whether the test cluster's binaries are cached (so that starting it builds
// nothing), and if not, why.
func k8sCached() (bool, string) {
	cache := kubecluster.CacheDir()
	k8s, _ := filepath.Glob(filepath.Join(cache, "bin", "k8s-*"))
	if len(k8s) == 0 {
		return false, "the Kubernetes test binaries are not built (nothing in " + filepath.Join(cache, "bin") + ")"
	}
	if _, err := os.Stat(filepath.Join(cache, "debroot", "usr", "bin", "etcd")); err != nil {
		return false, "etcd is not unpacked in " + filepath.Join(cache, "debroot")
	}
	if os.Geteuid() != 0 {
		return false, "the test cluster needs root"
	}
	return true, ""
}
