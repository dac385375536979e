package pool_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// BenchmarkShim calls a real shim replica (one container of testdata/envs/actor, keep-alive) with a
// trivial async method, through the library and through plain net/http with the same body and
// headers, so that the library's overhead is the difference:
//
//	go test -run '^$' -bench 'Shim/' ./pkg/pool
//
// Call and RawHTTP are sequential (ns/op is the latency); the Parallel variants run 64 goroutines on
// two cores (32 per GOMAXPROCS) and report calls/s. `go run ./bench` interleaves the sequential
// comparison in rounds, which is fairer on a noisy machine than these back-to-back runs.
func BenchmarkShim(b *testing.B) {
	ctx := context.Background()
	dir := e2e.StateDir(b)
	tag := e2e.Image(b, "actor")
	c, err := rfenv.New(rfenv.WithStateDir(dir))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	env, err := c.Up(ctx, tag, rfenv.WithName("poolbench-"+strconv.FormatInt(time.Now().UnixNano()%1e6, 10)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(env.Release)
	p := env.Pool()
	req := pool.Request{Method: "echo", Kwargs: map[string]any{"value": 1}}
	body, err := p.Encode(req)
	if err != nil {
		b.Fatal(err)
	}
	rec := env.Record()
	in := rec.Instances[0]
	url := "http://" + net.JoinHostPort(in.Address, strconv.Itoa(rec.Port)) + "/call"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
	b.Cleanup(hc.CloseIdleConnections)
	headers := http.Header{
		"Content-Type":     {"application/json"},
		"Authorization":    {"Bearer " + rec.Token},
		pool.TimeoutHeader: {"299950"},
	}
	raw := func() error {
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		hreq.Header = headers.Clone()
		resp, err := hc.Do(hreq)
		if err != nil {
			return err
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return err
	}
	lib := func() error { _, err := p.Call(ctx, req); return err }

	seq := func(f func() error) func(b *testing.B) {
		return func(b *testing.B) {
			for i := 0; i < 50; i++ {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	par := func(f func() error) func(b *testing.B) {
		return func(b *testing.B) {
			b.SetParallelism(32)
			b.ReportAllocs()
			t0 := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := f(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "calls/s")
		}
	}
	b.Run("Call", seq(lib))
	b.Run("RawHTTP", seq(raw))
	b.Run("CallParallel", par(lib))
	b.Run("RawHTTPParallel", par(raw))
}
