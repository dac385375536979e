//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/kube"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/sshx"
	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
	"github.com/rfenv/rfenv/pkg/testutil/kubecluster"
	"github.com/rfenv/rfenv/pkg/testutil/sshd"
)

// fireBurst makes n calls of req at once on p, each with its own timeout, and reports the burst's
// wall time, the calls made, how many failed and the first error.
func fireBurst(ctx context.Context, p *pool.Pool, req pool.Request, n int, timeout time.Duration) (time.Duration, int, int, error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var calls, failures int
	var first error
	start := make(chan struct{})
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			_, err := p.Call(cctx, req)
			mu.Lock()
			calls++
			if err != nil {
				failures++
				if first == nil {
					first = err
				}
			}
			mu.Unlock()
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	return time.Since(t0), calls, failures, first
}

// burst makes remoteBurstCalls calls at once on env and reports failures, calls and the burst's wall.
func burst(b *testing.B, env *rfenv.Env) {
	ctx := context.Background()
	req := pool.Request{Method: "sleep", Kwargs: map[string]any{"seconds": remoteBurstSleep}}
	var failures, calls int
	var first error
	var walls []time.Duration
	for i := 0; i < b.N; i++ {
		wall, n, failed, err := fireBurst(ctx, env.Pool(), req, remoteBurstCalls, 5*time.Minute)
		calls += n
		failures += failed
		if first == nil {
			first = err
		}
		walls = append(walls, wall)
	}
	var worst time.Duration
	for _, w := range walls {
		worst = max(worst, w)
	}
	b.ReportMetric(float64(failures), "failures")
	b.ReportMetric(float64(calls), "calls")
	b.ReportMetric(float64(worst)/1e3, "worst-burst-us")
	b.ReportMetric(float64(walls[0])/1e3, "first-burst-us")
	if failures > 0 {
		b.Errorf("%d of %d calls failed; first: %v", failures, calls, first)
	}
}

// BenchmarkSSHBurst: 2 replicas on one ssh:// host (a real OpenSSH server on 127.0.0.1), 2,000
// calls at once through its one SSH connection. `go run ./bench` (item 14) runs it.
func BenchmarkSSHBurst(b *testing.B) {
	ctx := context.Background()
	root := e2e.Root(b)
	e2e.Docker(b)
	stateDir := e2e.StateDir(b)
	s := sshd.Start(b)
	c, err := rfenv.New(rfenv.WithStateDir(stateDir), rfenv.WithSSH(rfenv.SSHConfig{
		KnownHostsPath: s.WriteKnownHosts(b, ""),
		ConfigPath:     sshx.None,
		IdentityFiles:  []string{s.ClientKeyPath},
	}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if _, err := buildEnv(ctx, c, root, "shim", shimTag, dockertest.BaseImage()); err != nil {
		b.Fatal(err)
	}
	env, err := c.Up(ctx, shimTag, rfenv.WithName("rfbench-sshburst-"+randSuffix()), rfenv.WithReplicas(2), rfenv.WithHosts(s.Target("")))
	if err != nil {
		b.Fatalf("up through ssh: %v\nsshd log:\n%s", err, s.Log())
	}
	b.Cleanup(env.Release)
	for _, in := range env.Record().Instances {
		if in.Host != s.Target("") {
			b.Fatalf("replica %d runs on %q, want %q", in.Index, in.Host, s.Target(""))
		}
	}
	b.ResetTimer()
	burst(b, env)
}

// BenchmarkK8sBurst: 2 replicas on the real single-node cluster (pkg/testutil/kubecluster), 2,000
// calls at once through the Kubernetes API server (port-forward streams).
func BenchmarkK8sBurst(b *testing.B) {
	if os.Getenv(k8sBenchEnv) != "1" {
		b.Skip("needs the cached Kubernetes test binaries: set " + k8sBenchEnv + "=1 (go run ./bench does when they are there)")
	}
	ctx := context.Background()
	root := e2e.Root(b)
	e2e.Docker(b)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	cluster, err := kubecluster.Start(sctx, kubecluster.Options{Log: os.Stderr})
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			b.Errorf("kubecluster teardown: %v", err)
		}
	})
	b.Setenv("KUBECONFIG", cluster.Kubeconfig)
	b.Setenv(kube.TransportEnv, "apiserver")
	c, err := rfenv.New(rfenv.WithStateDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c.DownAll(dctx, rfenv.DownOptions{})
		c.Close()
	})
	if _, err := buildEnv(ctx, c, root, "shim", shimTag, dockertest.BaseImage()); err != nil {
		b.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	err = cluster.LoadImage(lctx, shimTag)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	host := fmt.Sprintf("k8s://%s/default", kubecluster.ContextName)
	env, err := c.Up(ctx, shimTag, rfenv.WithUpOptions(rfenv.UpOptions{
		Name: "rfbench-k8sburst-" + randSuffix(), Replicas: 2, Hosts: []string{host}, ReadyTimeout: 5 * time.Minute, PullPolicy: "Never",
	}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(env.Release)
	b.ResetTimer()
	burst(b, env)
}
