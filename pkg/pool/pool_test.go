package pool

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
)

// fakeShim is a stand-in server for unit tests of the pool's logic (the real shim is tested end to
// end): it answers /call with the index it was given and counts calls.
func fakeShim(t *testing.T, name string, handler func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			w.Write([]byte(`{"status":"ok"}`))
		case "/call":
			calls.Add(1)
			if handler != nil {
				handler(w, r)
				return
			}
			w.Write([]byte(`{"result":"` + name + `"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func addr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func TestRoundRobinExact(t *testing.T) {
	a, ca := fakeShim(t, "a", nil)
	b, cb := fakeShim(t, "b", nil)
	p, err := New([]Endpoint{{Index: 0, Address: addr(a)}, {Index: 1, Address: addr(b)}}, Options{Strategy: RoundRobin})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < 100; i++ {
		if _, err := p.Call(context.Background(), Request{Method: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	if ca.Load() != 50 || cb.Load() != 50 {
		t.Errorf("round robin split %d/%d", ca.Load(), cb.Load())
	}
}

func TestSharedCounterDrivesRoundRobin(t *testing.T) {
	a, ca := fakeShim(t, "a", nil)
	b, cb := fakeShim(t, "b", nil)
	var n atomic.Uint64
	p, _ := New([]Endpoint{{Index: 0, Address: addr(a)}, {Index: 1, Address: addr(b)}},
		Options{Strategy: RoundRobin, Counter: func() (uint64, error) { return n.Add(1) - 1, nil }})
	defer p.Close()
	for i := 0; i < 10; i++ {
		p.Call(context.Background(), Request{Method: "m"})
	}
	if ca.Load() != 5 || cb.Load() != 5 || n.Load() != 10 {
		t.Errorf("split %d/%d with counter %d", ca.Load(), cb.Load(), n.Load())
	}
}

// A replica that refuses connections never saw the request: the call fails over, and the replica
// leaves rotation.
func TestFailoverOnRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	b, cb := fakeShim(t, "b", nil)
	p, _ := New([]Endpoint{{Index: 0, Address: dead}, {Index: 1, Address: addr(b)}}, Options{Strategy: RoundRobin})
	defer p.Close()
	for i := 0; i < 10; i++ {
		res, err := p.Call(context.Background(), Request{Method: "m"})
		if err != nil || string(res) != `"b"` {
			t.Fatalf("call %d: %s %v", i, res, err)
		}
	}
	if cb.Load() != 10 {
		t.Errorf("live replica got %d calls", cb.Load())
	}
	if p.list()[0].available() {
		t.Error("refusing replica still in rotation")
	}
}

// A call that may have run (the connection died after the request was sent) is not retried unless
// the caller opts in.
func TestNoRetryAfterSend(t *testing.T) {
	var hits atomic.Int64
	hang := func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close() // the method "ran", the reply is lost
	}
	a, _ := fakeShim(t, "a", hang)
	b, _ := fakeShim(t, "b", hang)
	p, _ := New([]Endpoint{{Index: 0, Address: addr(a)}, {Index: 1, Address: addr(b)}}, Options{})
	_, err := p.Call(context.Background(), Request{Method: "m"})
	if err == nil || !errors.Is(err, errs.Infra) || !strings.Contains(err.Error(), "Retries") {
		t.Fatalf("err = %v", err)
	}
	if hits.Load() != 1 {
		t.Errorf("the call reached %d replicas, want 1 (no silent retry)", hits.Load())
	}
	p.Close()
	hits.Store(0)
	p2, _ := New([]Endpoint{{Index: 0, Address: addr(a)}, {Index: 1, Address: addr(b)}}, Options{Retries: 1})
	defer p2.Close()
	p2.Call(context.Background(), Request{Method: "m"})
	if hits.Load() != 2 {
		t.Errorf("with Retries 1 the call reached %d replicas, want 2", hits.Load())
	}
}

func TestErrorKinds(t *testing.T) {
	cases := []struct {
		status int
		body   string
		kind   *errs.Kind
		msg    string
	}{
		{500, `{"error":{"type":"ValueError","message":"bad","traceback":"tb"}}`, errs.MethodRaised, "ValueError: bad"},
		{400, `{"error":{"type":"TypeError","message":"missing a required argument: 'a'"}}`, errs.Usage, "missing a required argument"},
		{404, `{"error":{"type":"NotFound","message":"no method 'x'; available: a, b"}}`, errs.NotFound, "available: a, b"},
		{504, `{"error":{"type":"DeadlineExceeded","message":"deadline of 0.1s passed"}}`, errs.Deadline, "deadline"},
		{401, `{"error":{"type":"Unauthorized","message":"bad token"}}`, errs.Infra, "token"},
		{422, `{"detail":"nope"}`, errs.Usage, "nope"},
	}
	for _, c := range cases {
		srv, _ := fakeShim(t, "x", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(c.status)
			w.Write([]byte(c.body))
		})
		p, _ := New([]Endpoint{{Address: addr(srv)}}, Options{})
		_, err := p.Call(context.Background(), Request{Method: "m"})
		p.Close()
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("status %d: err %v, want kind %v containing %q", c.status, err, c.kind, c.msg)
		}
	}
}

func TestDeadlineHeaderAndDefault(t *testing.T) {
	var got atomic.Value
	srv, _ := fakeShim(t, "x", func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get(TimeoutHeader) + "|" + r.Header.Get("Authorization"))
		var env map[string]json.RawMessage
		json.NewDecoder(r.Body).Decode(&env)
		w.Write([]byte(`{"result":` + string(env["kwargs"]) + `}`))
	})
	p, _ := New([]Endpoint{{Address: addr(srv)}}, Options{Token: "tok", DefaultTimeout: 7 * time.Second})
	defer p.Close()
	res, err := p.Call(context.Background(), Request{Method: "m", Kwargs: map[string]int{"k": 1}})
	if err != nil || string(res) != `{"k":1}` {
		t.Fatalf("%s %v", res, err)
	}
	parts := strings.Split(got.Load().(string), "|")
	ms := 0
	for _, ch := range parts[0] {
		ms = ms*10 + int(ch-'0')
	}
	if ms < 6500 || ms > 7000 || parts[1] != "Bearer tok" {
		t.Errorf("headers: timeout %q auth %q", parts[0], parts[1])
	}
}

func TestServerBudget(t *testing.T) {
	if d := serverBudget(10 * time.Second); d != 10*time.Second-50*time.Millisecond {
		t.Errorf("10s → %s", d)
	}
	if d := serverBudget(100 * time.Millisecond); d != 95*time.Millisecond {
		t.Errorf("100ms → %s", d)
	}
	if d := serverBudget(0); d != time.Millisecond {
		t.Errorf("0 → %s", d)
	}
}

func TestLeastBusyPrefersIdle(t *testing.T) {
	rs := []*replica{newReplica(Endpoint{Index: 0, Address: "x:1"}, 1, 1), newReplica(Endpoint{Index: 1, Address: "y:1"}, 1, 1)}
	rs[0].inFlight.Store(10)
	for i := 0; i < 50; i++ {
		if got := (leastBusyChooser{}).choose(rs); got != rs[1] {
			t.Fatal("least_busy chose the loaded replica of two")
		}
	}
}

func TestNoHealthyReplica(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	p, _ := New([]Endpoint{{Index: 0, Address: dead}}, Options{Name: "e"})
	defer p.Close()
	_, err := p.Call(context.Background(), Request{Method: "m"})
	if !errors.Is(err, errs.Infra) || !strings.Contains(err.Error(), "no healthy replica of e") || !errors.As(err, new(*NoReplicaError)) {
		t.Errorf("err = %v", err)
	}
}

func TestValidateStrategy(t *testing.T) {
	for _, s := range Strategies {
		if ValidateStrategy(s) != nil {
			t.Errorf("%s rejected", s)
		}
	}
	if err := ValidateStrategy("fastest"); !errors.Is(err, errs.Usage) {
		t.Errorf("fastest: %v", err)
	}
}
