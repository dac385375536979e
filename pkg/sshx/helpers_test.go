//go:build linux

package sshx

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/testutil/sshd"
)

// hermetic returns Options that read nothing from the machine's own ssh setup: no config files,
// no agent, the server's client key, and a known_hosts file holding the server's key.
func hermetic(t testing.TB, s *sshd.Server) Options {
	t.Helper()
	return Options{
		ConfigFile:       None,
		SystemConfigFile: None,
		AgentSocket:      None,
		IdentityFiles:    []string{s.ClientKeyPath},
		KnownHostsFiles:  []string{s.WriteKnownHosts(t, "")},
		Logger:           testLogger(t),
		// The handshake's crypto under the race detector on a loaded 2-core machine can take more
		// than the default 10 s; the bound only matters when a server never answers.
		DialTimeout: testDialTimeout,
	}
}

// testDialTimeout bounds connecting in tests that expect the server to answer.
const testDialTimeout = 2 * time.Minute

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SSHX_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(&tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w *tlogWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

func connect(t testing.TB, s *sshd.Server, o Options) *Client {
	t.Helper()
	c := New(mustTarget(t, s.Target("")), o)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), testDialTimeout+time.Minute)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

// httpServer runs a Go HTTP server on 127.0.0.1 answering "ok" (or what handler says).
func httpServer(t testing.TB, handler http.Handler) string {
	t.Helper()
	if handler == nil {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// tunnelHTTP is an HTTP client whose connections go through c.
func tunnelHTTP(c *Client, maxIdle int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         c.DialContext,
		MaxIdleConnsPerHost: maxIdle,
		MaxIdleConns:        maxIdle,
	}}
}

func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
