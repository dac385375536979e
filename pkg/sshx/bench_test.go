//go:build linux

package sshx

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/testutil/sshd"
)

// BenchmarkTunnelVsDirect times a keep-alive HTTP GET of a 2-byte response from a local Go HTTP
// server, directly and through an SSH tunnel to a 127.0.0.1 sshd (with and without the
// TCP_QUICKACK workaround). Compare the median-us and p99-us metrics of the sub-benchmarks.
func BenchmarkTunnelVsDirect(b *testing.B) {
	benchTunnel(b, nil)
}

// BenchmarkTunnelVsDirectSplit is the same with a response written in two pieces 0.2 ms apart
// (headers, then the body), as servers that stream (Docker's API) or do not coalesce writes
// produce: sshd sends two small packets, and Nagle at sshd holds the second until our ACK of the
// first, which Linux delays by up to 40 ms unless TCP_QUICKACK is re-armed.
func BenchmarkTunnelVsDirectSplit(b *testing.B) {
	benchTunnel(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		time.Sleep(200 * time.Microsecond)
		w.Write([]byte("ok"))
	}))
}

// BenchmarkTunnelUpload POSTs 8 MiB per op through the tunnel (MB/s), with and without the
// TCP_QUICKACK workaround and with the pty workaround used where TCP_QUICKACK does not exist.
func BenchmarkTunnelUpload(b *testing.B) {
	addr := httpServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	url := "http://" + addr + "/"
	s := sshd.Start(b)
	body := bytes.Repeat([]byte("x"), 8<<20)
	run := func(b *testing.B, hc *http.Client) {
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			resp, err := hc.Post(url, "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, &http.Client{Transport: &http.Transport{}}) })
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) { run(b, tunnelHTTP(connect(b, s, m.opts(b, s)), 1)) })
	}
}

var benchModes = []struct {
	name string
	opts func(testing.TB, *sshd.Server) Options
}{
	{"tunnel", func(t testing.TB, s *sshd.Server) Options { return hermetic(t, s) }},
	{"tunnel-no-quickack", func(t testing.TB, s *sshd.Server) Options {
		o := hermetic(t, s)
		o.disableQuickAck = true
		return o
	}},
	{"tunnel-pty-only", func(t testing.TB, s *sshd.Server) Options {
		o := hermetic(t, s)
		o.disableQuickAck = true
		o.forcePty = true
		return o
	}},
}

func benchTunnel(b *testing.B, h http.Handler) {
	addr := httpServer(b, h)
	url := "http://" + addr + "/"
	s := sshd.Start(b)

	run := func(b *testing.B, hc *http.Client) {
		ctx := context.Background()
		if _, err := get(ctx, hc, url); err != nil { // open the keep-alive connection
			b.Fatal(err)
		}
		durs := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			if _, err := get(ctx, hc, url); err != nil {
				b.Fatal(err)
			}
			durs = append(durs, time.Since(t0))
		}
		b.StopTimer()
		slices.Sort(durs)
		b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds())/1e3, "median-us")
		b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds())/1e3, "p99-us")
	}

	b.Run("direct", func(b *testing.B) {
		run(b, &http.Client{Transport: &http.Transport{}})
	})
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) { run(b, tunnelHTTP(connect(b, s, m.opts(b, s)), 1)) })
	}
}
