package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestInitFiles: init writes the four files, never overwrites one without --force, and checks its
// flags before touching anything.
func TestInitFiles(t *testing.T) {
	c := newCLI(t, t.TempDir())
	dir := filepath.Join(t.TempDir(), "My Env_2")

	r := c.ok("init", dir)
	var want []string
	for _, f := range initFiles {
		want = append(want, filepath.Join(dir, f))
	}
	if got := strings.Fields(r.stdout); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("stdout = %q, want the paths written %v", r.stdout, want)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	df := read("Dockerfile")
	if !strings.HasPrefix(strings.SplitN(df, "FROM ", 2)[1], "python:3.12-slim\n") {
		t.Errorf("default FROM is not python:3.12-slim:\n%s", df)
	}
	req, cp := strings.Index(df, "requirements.txt"), strings.Index(df, "COPY . /app")
	if req < 0 || cp < 0 || req > cp {
		t.Errorf("requirements.txt must be installed before the directory is copied:\n%s", df)
	}
	if strings.Contains(df, "CMD") || strings.Contains(df, "EXPOSE") {
		t.Errorf("a function environment's Dockerfile has no CMD or EXPOSE (rfenv adds its server):\n%s", df)
	}
	if py := read("env.py"); !strings.Contains(py, "class Actor") || !strings.Contains(py, "async def ") || !strings.Contains(py, "    def add(") {
		t.Errorf("env.py lacks an Actor with a sync and an async method:\n%s", py)
	}
	for _, line := range strings.Split(read("requirements.txt"), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			t.Errorf("requirements.txt requires %q: a build with no network would fail", l)
		}
	}
	if md := read("README.md"); !strings.Contains(md, "rfenv build . -t my-env-2:latest") {
		t.Errorf("README.md does not use the name derived from the directory (my-env-2):\n%s", md)
	}

	// Existing files: refused, named, untouched.
	os.WriteFile(filepath.Join(dir, "env.py"), []byte("# mine\n"), 0o644)
	r = c.fails(ExitUsage, "init", dir, "--type", "http")
	if !strings.Contains(r.stderr, filepath.Join(dir, "env.py")) || !strings.Contains(r.stderr, "--force") {
		t.Errorf("refusal should name the file and --force: %q", r.stderr)
	}
	if read("env.py") != "# mine\n" || strings.Contains(read("Dockerfile"), "uvicorn") {
		t.Error("a refused init changed files")
	}
	// One existing file is enough to refuse, and nothing else is written then either.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "README.md"), []byte("mine\n"), 0o644)
	r = c.fails(ExitUsage, "init", dir2)
	if !strings.Contains(r.stderr, filepath.Join(dir2, "README.md")+" already exists") {
		t.Errorf("stderr = %q", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir2, "env.py")); err == nil {
		t.Error("a refused init wrote env.py")
	}

	c.ok("init", dir, "--type", "http", "--force", "--base-image", "example.com/py:3")
	if df := read("Dockerfile"); !strings.Contains(df, "FROM example.com/py:3\n") || !strings.Contains(df, "EXPOSE 8000") ||
		!strings.Contains(df, `CMD ["python3", "-m", "uvicorn", "env:app"`) {
		t.Errorf("http Dockerfile:\n%s", df)
	}
	if py := read("env.py"); !strings.Contains(py, "app = FastAPI(") || !strings.Contains(py, `@app.get("/health")`) || !strings.Contains(py, "@app.post(") {
		t.Errorf("http env.py:\n%s", py)
	}

	// Bad input: usage errors that say what to do.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"init", t.TempDir(), "--type", "grpc"}, "use function"},
		{[]string{"init", t.TempDir(), "--base-image", "Not A Ref"}, "--base-image"},
		{[]string{"init", filepath.Join(dir, "env.py")}, "is a file, not a directory"},
		{[]string{"init"}, "takes a directory"},
	} {
		if r := c.fails(ExitUsage, tc.args...); !strings.Contains(r.stderr, tc.want) {
			t.Errorf("rfenv %v: stderr %q lacks %q", tc.args, r.stderr, tc.want)
		}
	}

	// The base image default comes from the configuration.
	c.env["RFENV_BASE_IMAGE"] = "registry.local/base:1"
	dir3 := t.TempDir()
	c.ok("init", dir3)
	if b, _ := os.ReadFile(filepath.Join(dir3, "Dockerfile")); !strings.Contains(string(b), "FROM registry.local/base:1\n") {
		t.Errorf("RFENV_BASE_IMAGE not used:\n%s", b)
	}
}

func TestEnvNameFromDir(t *testing.T) {
	for in, want := range map[string]string{
		"affine": "affine", "My Env_2": "my-env-2", "--x--": "x", "___": "myenv", "Été": "t", "a.b": "a-b",
	} {
		if got := envNameFromDir(in); got != want {
			t.Errorf("envNameFromDir(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestE2EInit: what init writes builds, starts and answers calls, for both types, on the real daemon.
func TestE2EInit(t *testing.T) {
	for _, tc := range []struct {
		kind, method, want string
		args               []string
	}{
		{"function", "add", "5", []string{"--arg", "a=2", "--arg", "b=3"}},
		{"http", "add", `{"sum":5}`, []string{"--arg", "a=2", "--arg", "b=3"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			c := newCLI(t, e2e.StateDir(t))
			dir := filepath.Join(t.TempDir(), "init-"+tc.kind)
			c.ok("init", dir, "--type", tc.kind, "--base-image", dockertest.BaseImage())
			tag := "rfenv-test-init-" + tc.kind + ":latest"
			name := "rfx-init-" + tc.kind
			c.ok("build", dir, "-t", tag, "--progress", "plain")
			up := decodeJSON[envView](t, c.ok("up", tag, "--name", name, "--json").stdout)
			if up.Type != tc.kind {
				t.Errorf("up type = %s, want %s", up.Type, tc.kind)
			}
			args := append([]string{"call", name, tc.method}, tc.args...)
			if got := strings.TrimSpace(c.ok(args...).stdout); got != tc.want {
				t.Errorf("%s = %s, want %s", tc.method, got, tc.want)
			}
			if tc.kind == "function" {
				if got := strings.TrimSpace(c.ok("call", name, "greet", "--arg", "name=you").stdout); got != `{"message":"hello, you!"}` {
					t.Errorf("greet = %s", got)
				}
				ms := decodeJSON[[]pool.Method](t, c.ok("methods", name, "--json").stdout)
				if len(ms) != 2 || ms[0].Name != "add" || ms[0].Async || ms[1].Name != "greet" || !ms[1].Async {
					t.Errorf("methods = %+v, want sync add and async greet", ms)
				}
			}
			c.ok("down", name)
			if left := decodeJSON[[]envView](t, c.ok("ls", "--json").stdout); len(left) != 0 {
				t.Errorf("ls after down = %+v", left)
			}
		})
	}
}
