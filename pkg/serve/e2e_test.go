package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestE2EServe drives the API over a real unix socket against the real daemon: up, get, list,
// call (keyword and positional arguments, a raised method, a deadline), methods, stats, logs,
// down; then a shutdown with a call in flight, which must finish, and Cleanup taking down the
// environment brought up with cleanup.
func TestE2EServe(t *testing.T) {
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	tag := e2e.Image(t, "actor")
	c, err := rfenv.New(rfenv.WithStateDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sockDir := filepath.Join(t.TempDir(), "run")
	os.Mkdir(sockDir, 0o700)
	l, err := ListenUnix(filepath.Join(sockDir, "serve.sock"))
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Client: c})
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, l, TLSFiles{}) }()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", l.Address)
	}}}
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://rfenv"+path, strings.NewReader(body))
		res, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var out map[string]any
		if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, b)
			}
		} else {
			out = map[string]any{"text": string(b)}
		}
		return res.StatusCode, out
	}

	name := e2e.Name("serve")
	st, up := call("POST", "/v1/environments", `{"image":"`+tag+`","name":"`+name+`","replicas":2,"balancer":"round_robin","cleanup":true}`)
	if st != 200 || up["replicas"].(float64) != 2 || up["owned"] != true {
		t.Fatalf("up: %d %v", st, up)
	}
	if bytes.Contains([]byte(toJSON(up)), []byte(`"token"`)) {
		t.Error("the environment's view carries its token")
	}
	if st, got := call("GET", "/v1/environments/"+name, ""); st != 200 || got["name"] != name {
		t.Errorf("get: %d %v", st, got)
	}
	if st, ls := call("GET", "/v1/environments", ""); st != 200 || len(ls["environments"].([]any)) != 1 {
		t.Errorf("list: %d %v", st, ls)
	}
	path := "/v1/environments/" + name
	if st, r := call("POST", path+"/calls", `{"method":"add","kwargs":{"a":2,"b":3}}`); st != 200 || r["result"].(float64) != 5 {
		t.Errorf("keyword call: %d %v", st, r)
	}
	if st, r := call("POST", path+"/calls", `{"method":"add","args":[40,2]}`); st != 200 || r["result"].(float64) != 42 {
		t.Errorf("positional call: %d %v", st, r)
	}
	st, r := call("POST", path+"/calls", `{"method":"fail","kwargs":{"message":"bad"}}`)
	if e := errOf(t, r); st != 500 || e["kind"] != KindMethodRaised || e["type"] != "ValueError" || e["message"] != "bad" || !strings.Contains(e["traceback"].(string), "ValueError") {
		t.Errorf("raised: %d %v", st, e)
	}
	st, r = call("POST", path+"/calls", `{"method":"sleep","kwargs":{"seconds":30},"timeout_ms":300}`)
	if e := errOf(t, r); st != 504 || e["kind"] != KindDeadline {
		t.Errorf("deadline: %d %v", st, e)
	}
	st, r = call("POST", path+"/calls", `{"method":"nope"}`)
	if e := errOf(t, r); st != 404 || e["kind"] != KindNotFound {
		t.Errorf("unknown method: %d %v", st, e)
	}
	if st, m := call("GET", path+"/methods", ""); st != 200 || !strings.Contains(toJSON(m), `"name":"add"`) {
		t.Errorf("methods: %d %v", st, m)
	}
	st, stats := call("GET", path+"/stats", "")
	if st != 200 || stats["total_instances"].(float64) != 2 || stats["healthy_instances"].(float64) != 2 {
		t.Errorf("stats: %d %v", st, stats)
	}
	if st, lg := call("GET", path+"/logs?tail=5", ""); st != 200 || lg["text"] == nil {
		t.Errorf("logs: %d %v", st, lg)
	}

	// A session pins its calls to the replica it was placed on.
	st, sess := call("POST", path+"/sessions", "")
	if st != 200 || sess["key"] == "" {
		t.Fatalf("open session: %d %v", st, sess)
	}
	key, replica := sess["key"].(string), strconv.Itoa(int(sess["replica"].(float64)))
	for i := 0; i < 6; i++ {
		st, r := call("POST", path+"/calls", `{"method":"replica","session":"`+key+`"}`)
		if st != 200 || r["result"] != replica {
			t.Fatalf("session call %d: %d %v, want replica %s", i, st, r, replica)
		}
	}
	if st, ls := call("GET", path+"/sessions", ""); st != 200 || !strings.Contains(toJSON(ls), key) {
		t.Errorf("list sessions: %d %v", st, ls)
	}
	if st, r := call("DELETE", path+"/sessions/"+key, ""); st != 200 || r["closed"] != true {
		t.Errorf("close session: %d %v", st, r)
	}
	if st, ls := call("GET", path+"/sessions", ""); st != 200 || strings.Contains(toJSON(ls), key) {
		t.Errorf("closed session still listed: %d %v", st, ls)
	}

	// A call in flight when the server is told to stop finishes with its answer.
	answered := make(chan int, 1)
	go func() {
		st, _ := call("POST", path+"/calls", `{"method":"sleep","kwargs":{"seconds":1.5}}`)
		answered <- st
	}()
	e2e.Eventually(t, 60*time.Second, "the slow call to be in flight", func() bool {
		_, st := call("GET", path+"/stats", "")
		for _, in := range st["instances"].([]any) {
			if in.(map[string]any)["in_flight"].(float64) > 0 {
				return true
			}
		}
		return false
	})
	hc.CloseIdleConnections()
	stop()
	if st := <-answered; st != 200 {
		t.Errorf("the call in flight at shutdown answered %d", st)
	}
	if err := <-ran; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := os.Stat(l.Address); !os.IsNotExist(err) {
		t.Errorf("socket left after shutdown: %v", err)
	}
	if len(e2e.List(t, docker, state.StateID(dir))) != 2 {
		t.Fatalf("the replicas should still run before Cleanup")
	}
	res, err := s.Cleanup(context.Background())
	if err != nil || len(res) != 1 || res[0].Removed != 2 {
		t.Errorf("cleanup: %v %+v", err, res)
	}
	if n := len(e2e.List(t, docker, state.StateID(dir))); n != 0 {
		t.Errorf("%d containers left after Cleanup", n)
	}
}
