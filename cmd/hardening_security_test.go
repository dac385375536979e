package cmd

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
	"github.com/rfenv/rfenv/pkg/testutil/reliability"
)

// probeScript runs in a container on the default bridge network, like any other workload on the host:
// it calls a replica's endpoints with no token, a wrong token and the right one (argv[2]), and prints
// what it got as JSON.
const probeScript = `
import json, sys, urllib.request, urllib.error
base, token = sys.argv[1], sys.argv[2]
def req(method, path, auth=None, body=None):
    r = urllib.request.Request(base + path, method=method, data=body)
    if body is not None:
        r.add_header("Content-Type", "application/json")
    if auth is not None:
        r.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return {"status": resp.status, "body": resp.read().decode()}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode(), "www_authenticate": e.headers.get("WWW-Authenticate", "")}
call = json.dumps({"method": "echo", "kwargs": {"value": "pwned"}}).encode()
print(json.dumps({
    "call_none": req("POST", "/call", None, call),
    "call_wrong": req("POST", "/call", "Bearer " + "0" * len(token), call),
    "call_prefix": req("POST", "/call", "Bearer " + token[:-1], call),
    "call_basic": req("POST", "/call", "Basic " + token, call),
    "methods_none": req("GET", "/methods"),
    "stats_none": req("GET", "/stats"),
    "health": req("GET", "/health"),
    "call_right": req("POST", "/call", "Bearer " + token, call),
}))
`

type probeResult struct {
	Status          int    `json:"status"`
	Body            string `json:"body"`
	WWWAuthenticate string `json:"www_authenticate"`
}

// TestE2EHardeningNetworkAuth: another container on the same Docker network reaches a replica's port
// (nothing is published on the host) but gets 401 without the token or with a wrong one; /health
// answers without a token and says nothing but its status.
func TestE2EHardeningNetworkAuth(t *testing.T) {
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	name := uniqueName("hauth")
	c.ok("up", e2e.Image(t, "hostile"), "--name", name, "--replicas", "2")
	assertNoPorts(t, docker, dir)
	ls := decodeJSON[[]envView](t, c.ok("ls", "--json").stdout)
	if strings.Contains(c.ok("ls", "--json").stdout, readStateFile(t, dir).Environments[name].Token) {
		t.Error("ls --json prints the token")
	}
	in := ls[0].Instances[0]
	token := readStateFile(t, dir).Environments[name].Token
	base := "http://" + net.JoinHostPort(in.Address, strconv.Itoa(in.Port))
	before := served(t, c, name)
	out := dockerCLI(t, "run", "--rm", dockertest.BaseImage(), "python3", "-c", probeScript, base, token)
	var got map[string]probeResult
	if err := json.Unmarshal([]byte(out[strings.LastIndex(out, "\n")+1:]), &got); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	executed := executedSince(t, c, name, before)
	answered := 0
	for _, k := range []string{"call_none", "call_wrong", "call_prefix", "call_basic", "call_right"} {
		if st := got[k].Status; st == 401 || st == 200 {
			answered++
		}
	}
	// Every /call the server answers is counted, refused ones too: four 401s and the one that ran.
	if executed != 5 {
		t.Errorf("the replicas counted %d calls, want 5 (4 refused, 1 run)", executed)
	}
	for _, k := range []string{"call_none", "call_wrong", "call_prefix", "call_basic", "methods_none", "stats_none"} {
		if got[k].Status != 401 || strings.Contains(got[k].Body, "pwned") || strings.Contains(got[k].Body, "echo") || !strings.HasPrefix(got[k].WWWAuthenticate, "Bearer") {
			t.Errorf("%s: %d %+v; want 401 with WWW-Authenticate: Bearer, revealing nothing", k, got[k].Status, got[k])
		}
	}
	if h := got["health"]; h.Status != 200 || h.Body != `{"status":"ok"}` {
		t.Errorf("/health without a token: %d %s; want 200 and the status only", h.Status, h.Body)
	}
	if r := got["call_right"]; r.Status != 200 || r.Body != `{"result":"pwned"}` {
		t.Errorf("with the token: %d %s (the 401s must be about the token, not the network)", r.Status, r.Body)
	}
	// The shim counted the refused calls (as errors); none of them ran.
	reliability.Record(t, reliability.Security, "a container on the same Docker bridge calls /call with no token, a wrong token, the token minus one character, and a Basic scheme; asks /methods and /stats without one",
		"401 with `WWW-Authenticate: Bearer` for each, nothing run and nothing revealed (the shim compares the token in constant time); with the right token the same request answers 200, so the network path was open and only the token stopped it",
		reliability.Calls(5, answered, executed, byShimStats+" (refused calls included)"))
	reliability.Record(t, reliability.Security, "`GET /health` without a token",
		fmt.Sprintf("200 `%s`: no method names, versions, environment or host details", got["health"].Body),
		reliability.NoCalls("the /health answer's status and body"))
}

// TestE2EHardeningSecrets: -e and --secret values never reach the state file (0600), rfenv's output
// (also --verbose), error messages, `ls`/`stats`/`methods`, or the containers' logs; --secret values
// are also kept out of `docker inspect`, while the method sees both.
func TestE2EHardeningSecrets(t *testing.T) {
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	pe := newProcEnv(t, dir)
	c := newCLI(t, dir) // only to read the replicas' call counts
	img := e2e.Image(t, "hostile")
	name := uniqueName("hsecret")
	envVal := "ev-" + randomHex(12)
	secretVal := "sv-" + randomHex(12)
	fromShell := "sh-" + randomHex(12)
	pe.extra = append(pe.extra, "FROM_SHELL="+fromShell)
	values := []string{envVal, secretVal, fromShell}
	commands := 0
	check := func(what, text string) {
		t.Helper()
		for _, v := range values {
			if strings.Contains(text, v) {
				t.Errorf("%s contains a secret value:\n%s", what, text)
			}
		}
	}
	run := func(want int, args ...string) result {
		t.Helper()
		r := pe.run(args...)
		commands++
		if r.code != want {
			t.Fatalf("rfenv %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), r.code, want, r.stderr)
		}
		check("`rfenv "+strings.Join(args, " ")+"` output", r.stdout+r.stderr)
		return r
	}
	upArgs := []string{"up", img, "--name", name, "--replicas", "2", "-e", "API_KEY=" + envVal, "--secret", "DB_PASS=" + secretVal, "-e", "FROM_SHELL"}
	run(0, append([]string{"--verbose"}, upArgs...)...)
	assertNoPorts(t, docker, dir)
	// From now on the environment's token must not show either (it is only in state.json).
	values = append(values, readStateFile(t, dir).Environments[name].Token)

	// The method sees every value.
	before := served(t, c, name)
	answered := 0
	for k, v := range map[string]string{"API_KEY": envVal, "DB_PASS": secretVal, "FROM_SHELL": fromShell} {
		sum := sha256.Sum256([]byte(v))
		r := run(0, "--verbose", "call", name, "env_sha256", "--arg-str", "name="+k)
		if got := strings.TrimSpace(r.stdout); got != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Errorf("the method sees %s with sha256 %s, want that of the value given", k, got)
		} else {
			answered++
		}
	}
	executed := executedSince(t, c, name, before)
	before = served(t, c, name)
	fileAnswered := 0
	// The secrets file stays in the container so a restarted container has its values again (issue
	// 11 defect 2); it is root-only, and it is in the container's filesystem, not its configuration.
	if r := run(0, "call", name, "secrets_file_exists"); strings.TrimSpace(r.stdout) != "true" {
		t.Errorf("the method says the secrets file exists: %s; it must stay for a restart", r.stdout)
	}
	fileAnswered++ // run stops the test unless the call answered
	fileExecuted := executedSince(t, c, name, before)
	for _, ct := range e2e.List(t, docker, state.StateID(dir)) {
		if mode := dockerCLI(t, "exec", ct.ID, "stat", "-c", "%a %U", "/run/rfenv/secrets.json"); mode != "400 root" {
			t.Errorf("%v: the secrets file is %q, want mode 400 owned by root", ct.Names, mode)
		}
	}

	// The state file: 0600, key names only.
	fi, err := os.Stat(stateFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(stateFile(dir))
	for _, v := range values[:3] {
		if strings.Contains(string(raw), v) {
			t.Errorf("state.json contains a secret value:\n%s", raw)
		}
	}
	if !strings.Contains(string(raw), `"API_KEY"`) || !strings.Contains(string(raw), `"DB_PASS"`) {
		t.Errorf("the state file should keep the variables' names: %s", raw)
	}

	// docker inspect: --secret values are absent; -e values are there (the documented caveat).
	for _, ct := range e2e.List(t, docker, state.StateID(dir)) {
		insp := dockerCLI(t, "inspect", ct.ID)
		if strings.Contains(insp, secretVal) {
			t.Errorf("docker inspect %v shows the --secret value", ct.Names)
		}
		if !strings.Contains(insp, "API_KEY="+envVal) {
			t.Errorf("docker inspect %v should show -e values (the documented reason to use --secret)", ct.Names)
		}
		logs := dockerCLI(t, "logs", ct.ID)
		check("docker logs "+ct.Names[0], logs)
	}

	// Everything else rfenv prints, including errors about the variables.
	run(0, "--verbose", "ls", "--json")
	run(0, "--verbose", "stats", name, "--json")
	run(0, "--verbose", "methods", name, "--json")
	run(0, "--verbose", "logs", name)
	before = served(t, c, name)
	run(ExitMethodRaised, "--verbose", "call", name, "opaque") // exits 1 with the error, or the test stops
	answered++
	executed += executedSince(t, c, name, before)
	r := run(ExitConflict, "--verbose", "up", img, "--name", name, "--replicas", "2", "-e", "API_KEY="+envVal+"-changed", "--secret", "DB_PASS="+secretVal, "-e", "FROM_SHELL")
	if !strings.Contains(r.stderr, "--force-recreate") {
		t.Errorf("a changed -e value should be a conflict: %s", r.stderr)
	}
	run(ExitUsage, "up", img, "--name", name, "-e", "RFENV_TOKEN="+envVal)
	run(ExitUsage, "up", img, "--name", name, "--secret", "NOT_SET_ANYWHERE")
	envFile := filepath.Join(t.TempDir(), "vars.env")
	os.WriteFile(envFile, []byte("API_KEY="+envVal+"\n"+secretVal+"\n"), 0o600) // line 2 lacks KEY=
	if r := run(ExitUsage, "up", img, "--name", name, "--env-file", envFile); !strings.Contains(r.stderr, "line 2") {
		t.Errorf("a bad env file line should be named by number: %s", r.stderr)
	}
	run(0, "--verbose", "down", name)
	reliability.Record(t, reliability.Security, "secret values given with `-e K=V`, `-e K` (from the shell) and `--secret K=V`",
		fmt.Sprintf("the method sees all three; none appears in state.json (mode 0600, names only), nor do they or the environment's token appear in rfenv's stdout/stderr with --verbose (%d commands, including a config conflict, a method error, a reserved name, an unset variable and a malformed --env-file line), in `ls`/`stats`/`methods`/`logs`, or in the containers' logs", commands),
		reliability.Calls(4, answered, executed, byShimStats))
	reliability.Record(t, reliability.Security, "`docker inspect` of a replica started with `--secret DB_PASS=V`",
		"V is not in the container's configuration: it travels in a file copied in before start, root-only (0400) in the container's filesystem and kept there so that a restarted container loads it again; `-e` values do show there, as SECURITY.md says",
		reliability.Calls(1, fileAnswered, fileExecuted, byShimStats))
}

// rawExchange sends data on a new connection to addr and reads one answer: its status code (0 if the
// server closed the connection without answering) and its body.
func rawExchange(t *testing.T, addr string, data []byte) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	go conn.Write(data) // the server may answer (and close) before reading it all
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestE2EHardeningShimProtocol attacks a replica's server from the host: only the documented
// endpoints answer, oversized bodies and headers are refused, slow and garbage clients neither block
// nor crash it, and real calls keep succeeding throughout.
func TestE2EHardeningShimProtocol(t *testing.T) {
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	name := uniqueName("hshim")
	c.ok("up", e2e.Image(t, "hostile"), "--name", name)
	assertNoPorts(t, docker, dir)
	env := readStateFile(t, dir).Environments[name]
	addr := net.JoinHostPort(env.Instances[0].Address, strconv.Itoa(env.Port))
	auth := "Authorization: Bearer " + env.Token + "\r\n"
	realAnswered := 0 // real calls that got their result; one that does not stops the test
	callOK := func() {
		t.Helper()
		if got := strings.TrimSpace(c.ok("call", name, "echo", "--arg", "value=42").stdout); got != "42" {
			t.Fatalf("a real call got %s", got)
		}
		realAnswered++
	}

	// Only the documented endpoints.
	for _, tc := range []struct {
		what, req string
		want      int
	}{
		{"GET /etc/passwd", "GET /etc/passwd HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 404},
		{"GET /../../etc/passwd", "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 404},
		{"GET /app/env.py", "GET /app/env.py HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 404},
		{"GET /call", "GET /call HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 405},
		{"PUT /call", "PUT /call HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 2\r\n\r\n{}", 405},
		{"POST /health", "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405},
		{"DELETE /stats", "DELETE /stats HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 405},
		{"a body that is not JSON", "POST /call HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 5\r\n\r\n{nope", 400},
		{"chunked transfer encoding", "POST /call HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 501},
		{"two Content-Length headers", "POST /call HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}", 400},
	} {
		code, reply := rawExchange(t, addr, []byte(tc.req))
		var envelope struct {
			Error *struct{ Type, Message string } `json:"error"`
		}
		if code != tc.want || strings.Contains(reply, "root:") || strings.Contains(reply, "class Actor") ||
			json.Unmarshal([]byte(reply), &envelope) != nil || envelope.Error == nil || envelope.Error.Message == "" {
			t.Errorf("%s: %d, want %d with a JSON error envelope; reply %q", tc.what, code, tc.want, reply)
		}
	}
	reliability.Record(t, reliability.Security, "requests outside the protocol, with the right token: GET /etc/passwd, /../../etc/passwd, /app/env.py; GET or PUT /call; POST /health; DELETE /stats; a non-JSON body; chunked encoding; two Content-Lengths",
		"404 for unknown paths (no file is ever served), 405 for a wrong method, 400 for a malformed body or framing, 501 for chunked (Transfer-Encoding is not implemented); every answer is a JSON error envelope",
		reliability.NoCalls("each answer's status and JSON error envelope, and that no reply holds a file's content"))

	// Limits: body size (refused from the Content-Length, before reading), header count and size.
	start := time.Now()
	code, reply := rawExchange(t, addr, []byte("POST /call HTTP/1.1\r\nHost: x\r\n"+auth+"Content-Length: 1073741824\r\n\r\n{"))
	if code != 413 || !strings.Contains(reply, "limit of 67108864 bytes") {
		t.Errorf("a 1 GiB Content-Length: %d %q, want 413", code, reply)
	}
	took413 := time.Since(start)
	many := "GET /health HTTP/1.1\r\n" + strings.Repeat("X-Pad: 1\r\n", 150) + "\r\n"
	if code, reply := rawExchange(t, addr, []byte(many)); code != 431 {
		t.Errorf("150 headers: %d %q, want 431", code, reply)
	}
	long := "GET /health HTTP/1.1\r\nX-Pad: " + strings.Repeat("a", 80<<10) + "\r\n\r\n"
	if code, reply := rawExchange(t, addr, []byte(long)); code != 431 {
		t.Errorf("an 80 KiB header: %d %q, want 431", code, reply)
	}
	before, realAnswered := served(t, c, name), 0
	callOK()
	executed := executedSince(t, c, name, before)
	reliability.Record(t, reliability.Security, "a request announcing a 1 GiB body; 150 headers; one 80 KiB header; then a real call",
		fmt.Sprintf("413 in %s, from the Content-Length alone (the body is never read or buffered); 431 for the header count (limit 100) and size (64 KiB); the connection is closed, the server serves on", secs(took413)),
		reliability.Calls(1, realAnswered, executed, byShimStats))

	// Slow clients: 50 connections each holding a half-sent request (headers, or part of a body),
	// while real calls go on.
	var slow []net.Conn
	for i := range 50 {
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		slow = append(slow, conn)
		if i%2 == 0 {
			fmt.Fprintf(conn, "POST /call HTTP/1.1\r\nHost: x\r\n%sContent-Length: 1000\r\n\r\n{\"method\": \"ec", auth)
		} else {
			fmt.Fprintf(conn, "POST /call HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		}
	}
	defer func() {
		for _, s := range slow {
			s.Close()
		}
	}()
	var slowest time.Duration
	before, realAnswered = served(t, c, name), 0
	for range 20 {
		start := time.Now()
		callOK()
		slowest = max(slowest, time.Since(start))
	}
	// No timing bound here (the machine may be loaded): a stalled request that held a worker would
	// leave these calls unanswered, and callOK stops the test.
	executed = executedSince(t, c, name, before)
	reliability.Record(t, reliability.Security, "50 slow clients each holding a half-sent request (headers or body) open",
		fmt.Sprintf("20 real calls meanwhile all succeeded (slowest %s, each a fresh `rfenv call`): the server is event-driven, a stalled request holds no worker", secs(slowest)),
		reliability.Calls(20, realAnswered, executed, byShimStats))

	// Garbage: random bytes, a request line that is not HTTP, and a binary flood; each gets a 400 or a
	// closed connection, and the server serves on.
	garbage := [][]byte{make([]byte, 4096), []byte("HELLO\x00\x01\x02 there\r\n\r\n"), []byte("GET / HTTP/9.9\r\n\r\n"), make([]byte, 1<<20)}
	rand.Read(garbage[0])
	rand.Read(garbage[3])
	for i, g := range garbage {
		// 400, or 431 when more than 64 KiB arrive before the server looks at them, or a close.
		if code, reply := rawExchange(t, addr, g); code != 400 && code != 431 && code != 0 {
			t.Errorf("garbage %d: %d %q, want 400, 431 or a closed connection", i, code, reply)
		}
	}
	// And concurrently with calls.
	before, realAnswered = served(t, c, name), 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, 64<<10)
			rand.Read(b)
			conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			conn.Write(b)
			bufio.NewReader(conn).ReadString('\n')
		}()
	}
	for range 10 {
		callOK()
	}
	wg.Wait()
	executed = executedSince(t, c, name, before)
	st := decodeJSON[struct {
		Instances []struct {
			Healthy bool    `json:"healthy"`
			UptimeS float64 `json:"uptime_s"`
		} `json:"instances"`
	}](t, c.ok("stats", name, "--json").stdout)
	if !st.Instances[0].Healthy || time.Duration(st.Instances[0].UptimeS*float64(time.Second)) < time.Since(start)-time.Second {
		t.Errorf("the server restarted or is unhealthy after the garbage: %+v", st.Instances[0])
	}
	if n := dockerCLI(t, "inspect", "-f", "{{.RestartCount}}", env.Instances[0].ContainerID); n != "0" {
		t.Errorf("the container restarted %s time(s)", n)
	}
	reliability.Record(t, reliability.Security, "garbage: 4 KiB and 1 MiB of random bytes, a non-HTTP request line, HTTP/9.9, and 20 connections of random bytes alongside real calls",
		"400 (431 when over 64 KiB arrive at once) or a closed connection for each; the 10 real calls in between succeeded; same server process throughout (uptime unbroken, 0 container restarts)",
		reliability.Calls(10, realAnswered, executed, byShimStats))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var _ = context.Background
