//go:build linux

package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/sshx"
	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
	"github.com/rfenv/rfenv/pkg/testutil/sshd"
)

// BenchmarkSSH brings up one replica through a real OpenSSH server on 127.0.0.1 (an ssh:// host, as
// a remote machine would be used) and measures calls through the SSH tunnel next to direct calls to
// the same container. `go run ./bench` (item 7) runs it and parses its metrics.
//
//	latency:       each op is one direct call and one tunnelled call (alternating which goes first);
//	               metrics direct-/tunnel- median-us and p99-us, added-median-us.
//	concurrent200: each op makes 200 calls of sleep(0.02) at once through the tunnel (the first op of a
//	               run on a fresh pool: 200 new channels at once); metrics failures, calls,
//	               burst-median-us, burst-p99-us.
func BenchmarkSSH(b *testing.B) {
	ctx := context.Background()
	root := e2e.Root(b)
	e2e.Docker(b) // fails unless the daemon and the base image are there
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
	name := "rfbench-ssh-" + randSuffix()
	env, err := c.Up(ctx, shimTag, rfenv.WithName(name), rfenv.WithHosts(s.Target("")))
	if err != nil {
		b.Fatalf("up through ssh: %v\nsshd log:\n%s", err, s.Log())
	}
	b.Cleanup(env.Release)
	rec := env.Record()
	if sp := rec.Instances[0].Host; sp != s.Target("") {
		b.Fatalf("replica runs on %q, want %q", sp, s.Target(""))
	}
	tunnel := env.Pool()
	direct, err := pool.New([]pool.Endpoint{{Index: 0, Host: "localhost", Address: endpointAddr(env, 0)}},
		pool.Options{Name: name, Token: rec.Token, Kind: rec.Type})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(direct.Close)

	b.Run("latency", func(b *testing.B) {
		for i := 0; i < 50; i++ { // open both keep-alive connections
			for _, p := range []*pool.Pool{direct, tunnel} {
				if _, err := p.Call(ctx, trivialReq); err != nil {
					b.Fatal(err)
				}
			}
		}
		dd := make([]time.Duration, 0, b.N)
		td := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			order := [2]*pool.Pool{direct, tunnel}
			if i%2 == 1 {
				order = [2]*pool.Pool{tunnel, direct}
			}
			for _, p := range order {
				t0 := time.Now()
				if _, err := p.Call(ctx, trivialReq); err != nil {
					b.Fatal(err)
				}
				d := time.Since(t0)
				if p == direct {
					dd = append(dd, d)
				} else {
					td = append(td, d)
				}
			}
		}
		b.StopTimer()
		slices.Sort(dd)
		slices.Sort(td)
		b.ReportMetric(float64(quantile(dd, 0.5))/1e3, "direct-median-us")
		b.ReportMetric(float64(quantile(dd, 0.99))/1e3, "direct-p99-us")
		b.ReportMetric(float64(quantile(td, 0.5))/1e3, "tunnel-median-us")
		b.ReportMetric(float64(quantile(td, 0.99))/1e3, "tunnel-p99-us")
		b.ReportMetric(float64(quantile(td, 0.5)-quantile(dd, 0.5))/1e3, "added-median-us")
	})

	b.Run("concurrent200", func(b *testing.B) {
		const n = 200
		req := pool.Request{Method: "sleep", Kwargs: map[string]any{"seconds": 0.02}}
		var failures, calls int
		var firstErr error
		bursts := make([]time.Duration, 0, b.N)
		// A fresh pool per run: its first burst opens 200 channels on the SSH connection at once,
		// later bursts reuse them as keep-alive connections (a fresh pool per burst would measure
		// the kernel's ephemeral ports instead: sshd's TIME_WAIT sockets towards the container).
		e, err := c.Get(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		defer e.Release()
		for i := 0; i < b.N; i++ {
			wall, made, failed, err := fireBurst(ctx, e.Pool(), req, n, 30*time.Second)
			calls += made
			failures += failed
			if firstErr == nil {
				firstErr = err
			}
			bursts = append(bursts, wall)
		}
		slices.Sort(bursts)
		b.ReportMetric(float64(failures), "failures")
		b.ReportMetric(float64(calls), "calls")
		b.ReportMetric(float64(quantile(bursts, 0.5))/1e3, "burst-median-us")
		b.ReportMetric(float64(quantile(bursts, 0.99))/1e3, "burst-p99-us")
		if failures > 0 {
			b.Errorf("%d of %d calls through SSH failed; first: %v", failures, calls, firstErr)
		}
	})
}
