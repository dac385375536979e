package serve

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// newTestServer is a Server over a library client with an empty state directory: no Docker is
// touched by the requests these tests send (they fail validation or name unknown environments).
func newTestServer(t *testing.T, token string) *httptest.Server {
	t.Helper()
	c, err := rfenv.New(rfenv.WithStateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ts := httptest.NewServer(New(Options{Client: c, Token: token}))
	t.Cleanup(ts.Close)
	return ts
}

func do(t *testing.T, ts *httptest.Server, method, path, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %v", method, path, err)
	}
	return res.StatusCode, out
}

func errOf(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %v", body)
	}
	return e
}

func TestBadRequestsName400TheField(t *testing.T) {
	ts := newTestServer(t, "")
	cases := []struct {
		path, body, field string
	}{
		{"/v1/environments", `{}`, "image"},
		{"/v1/environments", `{"image":"a:1","replicas":-2}`, "replicas"},
		{"/v1/environments", `{"image":"a:1","replica":2}`, "replica"}, // misspelt: unknown field
		{"/v1/environments", `{"image":"a:1","replicas":"two"}`, "replicas"},
		{"/v1/environments", `{"image":"a:1","name":"-bad"}`, "name"},
		{"/v1/environments", `{"image":"a:1","labels":{"rfenv.env":"x"}}`, "labels"},
		{"/v1/environments", `{"image":"a:1","urls":["http://x"]}`, "urls"},
		{"/v1/environments", `{"image":"a:1","memory":-1}`, "memory"},
		{"/v1/environments", `not json`, "body"},
		{"/v1/environments", ``, "body"},
		{"/v1/environments/x/calls", `{}`, "method"},
		{"/v1/environments/x/calls", `{"method":"m","kwargs":[1]}`, "kwargs"},
		{"/v1/environments/x/calls", `{"method":"m","timeout_ms":-1}`, "timeout_ms"},
		{"/v1/environments/x/calls", `{"method":"m","args":{"a":1}}`, "args"},
		{"/v1/builds", `{"tag":"a:1"}`, "path"},
		{"/v1/builds", `{"path":"/tmp"}`, "tag"},
		{"/v1/builds", `{"path":"/tmp","tag":"a:1","type":"rust"}`, "type"},
	}
	for _, c := range cases {
		status, body := do(t, ts, "POST", c.path, c.body)
		e := errOf(t, body)
		if status != http.StatusBadRequest || e["kind"] != KindUsage || e["field"] != c.field {
			t.Errorf("POST %s %s: got %d %v, want 400 usage naming %q", c.path, c.body, status, e, c.field)
		}
	}
	status, body := do(t, ts, "GET", "/v1/environments/x/logs?tail=many", "")
	if e := errOf(t, body); status != 400 || e["field"] != "tail" {
		t.Errorf("logs ?tail=many: %d %v", status, e)
	}
}

func TestUnknownEnvironmentIsNotFound(t *testing.T) {
	ts := newTestServer(t, "")
	for _, r := range [][2]string{
		{"GET", "/v1/environments/ghost"},
		{"POST", "/v1/environments/ghost/calls"},
		{"GET", "/v1/environments/ghost/methods"},
		{"GET", "/v1/environments/ghost/stats"},
		{"GET", "/v1/environments/ghost/logs"},
		{"GET", "/v1/nothing-here"},
	} {
		status, body := do(t, ts, r[0], r[1], `{"method":"m"}`)
		if e := errOf(t, body); status != http.StatusNotFound || e["kind"] != KindNotFound {
			t.Errorf("%s %s: %d %v, want 404 not_found", r[0], r[1], status, e)
		}
	}
	// Down of an environment that is gone is not an error (as `rfenv down`). It still looks for
	// labelled containers of that name on the local daemon, so it needs one: not under -short.
	if status, _ := do(t, ts, "DELETE", "/v1/environments/ghost", ""); !testing.Short() && status != 200 {
		t.Errorf("DELETE of an unknown environment: %d", status)
	}
	status, body := do(t, ts, "GET", "/v1/environments", "")
	if status != 200 || len(body["environments"].([]any)) != 0 {
		t.Errorf("list: %d %v", status, body)
	}
}

func TestBearerTokenRequired(t *testing.T) {
	ts := newTestServer(t, "s3cret")
	for _, h := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret"}} {
		status, body := do(t, ts, "GET", "/v1/environments", "", h...)
		if status != http.StatusUnauthorized || strings.Contains(toJSON(body), "s3cret") {
			t.Errorf("headers %v: %d %v", h, status, body)
		}
	}
	if status, _ := do(t, ts, "GET", "/v1/environments", "", "Authorization", "Bearer s3cret"); status != 200 {
		t.Errorf("right token: %d", status)
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestErrorKindsMatchExitCodes(t *testing.T) {
	cases := map[*errs.Kind]string{
		errs.Usage: KindUsage, errs.NotFound: KindNotFound, errs.MethodRaised: KindMethodRaised,
		errs.Infra: KindInfra, errs.Conflict: KindConflict, errs.SessionLost: KindSessionLost,
		errs.Deadline: KindDeadline, errs.Interrupted: KindInterrupted,
	}
	seen := map[int]bool{}
	for k, want := range cases {
		if got := kindName(errs.New(k, "x")); got != want {
			t.Errorf("%v → %q, want %q", k, got, want)
		}
		seen[kindStatus[want]] = true
	}
	if len(seen) != len(Kinds()) {
		t.Errorf("kinds share HTTP statuses: %v", kindStatus)
	}
	if kindName(os.ErrPermission) != KindInfra {
		t.Error("an unclassified error must be infra")
	}
}

// TestOpenAPIMatchesRoutes keeps the schema and the mux in step: every route is described and
// every described operation is routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	ts := newTestServer(t, "")
	status, spec := do(t, ts, "GET", "/v1/openapi.json", "")
	if status != 200 {
		t.Fatalf("openapi.json: %d", status)
	}
	var described []string
	for path, ops := range spec["paths"].(map[string]any) {
		for m := range ops.(map[string]any) {
			described = append(described, strings.ToUpper(m)+" "+path)
		}
	}
	var routed []string
	for _, r := range (&Server{}).routes() {
		routed = append(routed, r.method+" "+r.pattern)
	}
	slices.Sort(described)
	slices.Sort(routed)
	if !slices.Equal(described, routed) {
		t.Errorf("schema and routes differ:\nschema: %v\nroutes: %v", described, routed)
	}
	// The request schemas carry the wire fields.
	up := spec["paths"].(map[string]any)["/v1/environments"].(map[string]any)["post"].(map[string]any)
	props := up["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)["properties"].(map[string]any)
	for _, f := range []string{"image", "replicas", "hosts", "env", "force_recreate", "max_inflight", "transport", "cleanup"} {
		if _, ok := props[f]; !ok {
			t.Errorf("UpRequest schema lacks %q", f)
		}
	}
}

func TestListenUnixIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenUnix(filepath.Join(dir, "s.sock")); errs.KindOf(err) != errs.Usage {
		t.Fatalf("a socket in a 0755 directory: %v, want a usage error", err)
	}
	os.Chmod(dir, 0o700)
	path := filepath.Join(dir, "s.sock")
	l, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	if _, err := ListenUnix(path); errs.KindOf(err) != errs.Conflict {
		t.Errorf("second server on a live socket: %v, want conflict", err)
	}
	l.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}
}

func TestListenTCPWritesTokenFile(t *testing.T) {
	tf := filepath.Join(t.TempDir(), "token")
	l, err := ListenTCP("127.0.0.1:0", tf)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(tf)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode: %v %v", fi, err)
	}
	b, _ := os.ReadFile(tf)
	if strings.TrimSpace(string(b)) != l.Token || len(l.Token) != 64 {
		t.Errorf("token file does not hold the token")
	}
	l.Close()
	if _, err := os.Stat(tf); !os.IsNotExist(err) {
		t.Errorf("token file left after Close")
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "0.0.0.0:1": false, "10.0.0.1:1": false} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%s) != %v", addr, want)
		}
	}
}
