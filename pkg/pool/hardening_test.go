package pool

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rfenv/rfenv/pkg/errs"
)

// foreignShim is another environment's server at a replica's address: healthy, but it refuses this
// pool's token.
func foreignShim(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.Write([]byte(`{"status":"ok","overdue":0}`))
			return
		}
		if r.URL.Path == "/call" {
			calls.Add(1)
		}
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"type":"Unauthorized","message":"missing or wrong bearer token"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// A 401 means the method never ran: the call fails over, and the replica stays out of rotation
// although its /health says ok, because it still refuses the token.
func TestTokenRejectedFailsOver(t *testing.T) {
	foreign, fc := foreignShim(t)
	good, gc := fakeShim(t, "good", nil)
	p, _ := New([]Endpoint{{Index: 0, Address: addr(foreign)}, {Index: 1, Address: addr(good)}}, Options{Strategy: RoundRobin})
	defer p.Close()
	for i := 0; i < 50; i++ {
		res, err := p.Call(context.Background(), Request{Method: "m"})
		if err != nil || string(res) != `"good"` {
			t.Fatalf("call %d: %s %v", i, res, err)
		}
	}
	if fc.Load() != 1 || gc.Load() != 50 {
		t.Errorf("the foreign server got %d calls (want 1), the replica %d (want 50)", fc.Load(), gc.Load())
	}
	st := p.Stats(context.Background())
	if st.Instances[0].Healthy || st.Instances[0].Status != "unauthorized" {
		t.Errorf("stats of the foreign replica: %+v; want unhealthy, unauthorized", st.Instances[0])
	}

	// Alone, the 401 itself is the error: an infrastructure error that names the token.
	only, _ := New([]Endpoint{{Index: 0, Address: addr(foreign)}}, Options{})
	defer only.Close()
	_, err := only.Call(context.Background(), Request{Method: "m"})
	var ce *CallError
	if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized || !errors.Is(err, errs.Infra) || !strings.Contains(err.Error(), "token") {
		t.Errorf("err = %v", err)
	}
}

// A reply over MaxResponse fails that call only: the replica stays in rotation, and the error does
// not suggest --retries.
func TestReplyTooLargeKeepsReplica(t *testing.T) {
	var huge atomic.Bool
	huge.Store(true)
	srv, _ := fakeShim(t, "x", func(w http.ResponseWriter, r *http.Request) {
		if huge.Load() {
			w.Write([]byte(`{"result":"`))
			w.Write([]byte(strings.Repeat("a", MaxResponse)))
			w.Write([]byte(`"}`))
			return
		}
		w.Write([]byte(`{"result":1}`))
	})
	p, _ := New([]Endpoint{{Index: 0, Address: addr(srv)}}, Options{Retries: 3})
	defer p.Close()
	_, err := p.Call(context.Background(), Request{Method: "m"})
	if err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") || strings.Contains(err.Error(), "--retries") {
		t.Fatalf("err = %v", err)
	}
	huge.Store(false)
	if res, err := p.Call(context.Background(), Request{Method: "m"}); err != nil || string(res) != "1" {
		t.Errorf("the next call: %s %v (the replica should still be in rotation)", res, err)
	}
}

// A lost replica's error carries its index for diagnosis, and keeps the Infra kind.
func TestReplicaLostError(t *testing.T) {
	srv, _ := fakeShim(t, "x", func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	})
	p, _ := New([]Endpoint{{Index: 7, Address: addr(srv)}}, Options{})
	defer p.Close()
	_, err := p.Call(context.Background(), Request{Method: "m"})
	var lost *ReplicaLostError
	if !errors.As(err, &lost) || lost.Replica != 7 || lost.Method != "m" || !errors.Is(err, errs.Infra) {
		t.Errorf("err = %#v", err)
	}
}
