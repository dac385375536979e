package kube_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/batch"
	"github.com/rfenv/rfenv/pkg/kube"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// Run with: make test-k8s (which passes -bench K8s -benchtime 1x). Each benchmark does a fixed amount
// of work per iteration and reports its own metrics.

// BenchmarkK8sCall: sequential calls of a trivial method through the API server (a port-forward
// stream per keep-alive connection) next to direct calls to the pod's IP (what rfenv does inside the
// cluster).
func BenchmarkK8sCall(b *testing.B) {
	requireCluster(b)
	c := newClient(b)
	up(b, c, e2e.Name("k8s-bench-call"), 1)
	for _, mode := range []string{"apiserver", "direct"} {
		b.Run(mode, func(b *testing.B) {
			env := envOverTransport(b, c, e2e.Name("k8s-bench-call"), mode)
			ctx := context.Background()
			for range 20 { // warm up: connections, the shim's first calls
				if _, err := env.Call(ctx, "add", map[string]int{"a": 1}); err != nil {
					b.Fatal(err)
				}
			}
			const n = 500
			lat := make([]time.Duration, 0, n)
			b.ResetTimer()
			for range b.N {
				for range n {
					t0 := time.Now()
					if _, err := env.Call(ctx, "add", map[string]int{"a": 1}); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			var sum time.Duration
			for _, d := range lat {
				sum += d
			}
			b.ReportMetric(float64(sum.Microseconds())/float64(len(lat)), "us/call")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
		})
	}
}

// BenchmarkK8sReady: time from up to every replica serving, for 1 and 16 replicas (image already on
// the node), and the time down takes to leave nothing.
func BenchmarkK8sReady(b *testing.B) {
	requireCluster(b)
	img := image(b, "actor")
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := newClient(b)
			var ready, down time.Duration
			for i := range b.N {
				name := fmt.Sprintf("k8s-bench-ready-%d-%d", n, i)
				t0 := time.Now()
				env, err := c.Up(context.Background(), img, rfenv.WithUpOptions(rfenv.UpOptions{
					Name: name, Replicas: n, Hosts: []string{hostSpec}, ReadyTimeout: 5 * time.Minute,
				}))
				if err != nil {
					b.Fatal(err)
				}
				ready += time.Since(t0)
				env.Release()
				t1 := time.Now()
				if _, err := c.Down(context.Background(), []string{name}, rfenv.DownOptions{}); err != nil {
					b.Fatal(err)
				}
				down += time.Since(t1)
			}
			b.ReportMetric(ready.Seconds()/float64(b.N), "s-to-ready")
			b.ReportMetric(down.Seconds()/float64(b.N), "s-down")
		})
	}
}

// BenchmarkK8sBatch10k: a 10,000-call batch over 3 replicas, through the API server and direct.
func BenchmarkK8sBatch10k(b *testing.B) {
	requireCluster(b)
	c := newClient(b)
	up(b, c, e2e.Name("k8s-bench-batch"), 3)
	var in bytes.Buffer
	const n = 10000
	for i := range n {
		fmt.Fprintf(&in, "{\"a\": %d}\n", i)
	}
	for _, mode := range []string{"apiserver", "direct"} {
		b.Run(mode, func(b *testing.B) {
			env := envOverTransport(b, c, e2e.Name("k8s-bench-batch"), mode)
			b.ResetTimer()
			var total time.Duration
			for range b.N {
				t0 := time.Now()
				sum, err := batch.Run(context.Background(), env.Pool(), bytes.NewReader(in.Bytes()), io.Discard,
					batch.Options{Method: "add", Concurrency: 32, Timeout: 30 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				if sum.Failed != 0 {
					b.Fatalf("%d of %d calls failed: %v", sum.Failed, sum.Total, sum.FirstError)
				}
				total += time.Since(t0)
			}
			b.ReportMetric(float64(n*b.N)/total.Seconds(), "calls/s")
			b.ReportMetric(total.Seconds()/float64(b.N), "s/batch")
		})
	}
}

// envOverTransport opens an environment through a client of its own, so that the transport (through
// the API server, or direct to pod IPs) is chosen anew from kube.TransportEnv.
func envOverTransport(b *testing.B, c *rfenv.Client, name, mode string) *rfenv.Env {
	b.Helper()
	b.Setenv(kube.TransportEnv, mode)
	c2, err := rfenv.New(rfenv.WithStateDir(c.Store().Dir()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c2.Close() })
	env, err := c2.Get(context.Background(), name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(env.Release)
	return env
}
