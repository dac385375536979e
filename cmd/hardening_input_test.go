package cmd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
	"github.com/rfenv/rfenv/pkg/testutil/reliability"
)

// TestE2EHardeningBadEnvironments: what `build` and `up` say about broken environments and images, and
// that a failure leaves neither containers nor state entries behind.
func TestE2EHardeningBadEnvironments(t *testing.T) {
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	id := state.StateID(dir)
	c := newCLI(t, dir)
	nothingLeft := func(what string) {
		t.Helper()
		if n := len(e2e.List(t, docker, id)); n != 0 {
			t.Errorf("%s left %d container(s)", what, n)
		}
		if f := readStateFile(t, dir); len(f.Environments) != 0 {
			t.Errorf("%s left state entries %v", what, f.Names())
		}
	}

	t.Run("no env.py", func(t *testing.T) {
		empty := t.TempDir()
		os.WriteFile(filepath.Join(empty, "README.md"), []byte("not an environment\n"), 0o644)
		r := c.fails(ExitUsage, "build", empty, "-t", "rfenv-test-hardening-empty:latest")
		if !strings.Contains(r.stderr, "env.py") || !strings.Contains(r.stderr, empty) || r.stdout != "" {
			t.Errorf("stderr should name the directory and env.py: %s (stdout %q)", r.stderr, r.stdout)
		}
		reliability.Record(t, reliability.BadInput, "`rfenv build` of a directory without env.py",
			fmt.Sprintf("exit 2 before contacting Docker: %q", strings.ReplaceAll(firstLine(r.stderr), empty, "DIR")),
			reliability.NoCalls("that stdout stays empty and the message names the directory and env.py"))
	})

	t.Run("syntax error", func(t *testing.T) {
		img := e2e.Image(t, "syntaxerr")
		name := uniqueName("hsyntax")
		r := c.fails(ExitInfra, "up", img, "--name", name, "--replicas", "2")
		if !strings.Contains(r.stderr, "SyntaxError") || !strings.Contains(r.stderr, "def ping(self)") || !strings.Contains(r.stderr, "env.py") {
			t.Errorf("up should show the SyntaxError with the offending line; stderr: %s", r.stderr)
		}
		nothingLeft("a failed up")
		reliability.Record(t, reliability.BadInput, "env.py with a syntax error, at `rfenv up --replicas 2`",
			fmt.Sprintf("exit 4 in %s with Python's SyntaxError, file, line and caret (%q); both replicas removed, no state entry", secs(r.elapsed), firstLine(r.stderr)),
			reliability.NoCalls("the containers (none left) and the state entry (none)"))
	})

	t.Run("failing Dockerfile step", func(t *testing.T) {
		broken := t.TempDir()
		os.WriteFile(filepath.Join(broken, "env.py"), []byte("def f():\n    return 1\n"), 0o644)
		os.WriteFile(filepath.Join(broken, "Dockerfile"), []byte("FROM "+dockertest.BaseImage()+"\nCOPY env.py /app/env.py\nRUN echo installing-dependencies && echo 'pip: no such package' >&2 && exit 3\n"), 0o644)
		tag := "rfenv-test-hardening-broken:latest"
		r := c.fails(ExitInfra, "build", broken, "-t", tag, "--progress", "quiet")
		for _, want := range []string{"RUN echo installing-dependencies", "exit code: 3", "pip: no such package"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("the build error should contain %q; stderr: %s", want, r.stderr)
			}
		}
		if r.stdout != "" {
			t.Errorf("stdout should stay empty on failure, got %q", r.stdout)
		}
		if out, err := dockerOutput("image", "inspect", tag); err == nil {
			t.Errorf("a failed build tagged %s: %s", tag, out)
		}
		reliability.Record(t, reliability.BadInput, "a Dockerfile whose RUN step exits 3",
			"exit 4; the error names the step, BuildKit's exit code and the step's last output lines (even with --progress quiet); stdout stays empty and no image is tagged",
			reliability.NoCalls("stdout (empty) and the tag (no image)"))
	})

	t.Run("unknown image", func(t *testing.T) {
		r := c.fails(ExitNotFound, "up", "rfenv-test-hardening-no-such-image:latest", "--name", uniqueName("hnoimg"))
		if !strings.Contains(r.stderr, "not found") || !strings.Contains(r.stderr, "rfenv build") {
			t.Errorf("stderr: %s", r.stderr)
		}
		nothingLeft("up of a missing image")
		reliability.Record(t, reliability.BadInput, "`rfenv up` of an image that does not exist",
			fmt.Sprintf("exit 3: %q; no container, no state entry", firstLine(r.stderr)),
			reliability.NoCalls("the containers (none) and the state entry (none)"))
	})

	t.Run("name taken by a foreign container", func(t *testing.T) {
		name := uniqueName("htaken")
		foreign := dockerCLI(t, "run", "-d", "--name", name+"-0", dockertest.BaseImage(), "sleep", "300")
		t.Cleanup(func() { dockerOutput("rm", "-f", foreign) })
		r := c.fails(ExitConflict, "up", e2e.Image(t, "hostile"), "--name", name, "--replicas", "2")
		if !strings.Contains(r.stderr, name+"-0") || !strings.Contains(r.stderr, "was not started by rfenv") || !strings.Contains(r.stderr, "docker rm -f "+name+"-0") {
			t.Errorf("stderr should name the container in the way: %s", r.stderr)
		}
		if s := dockerCLI(t, "inspect", "-f", "{{.Id}} {{.State.Running}}", name+"-0"); s != foreign+" true" {
			t.Errorf("the foreign container was touched: %s", s)
		}
		// Replica 1 was created before replica 0 collided: it is removed again.
		if out, err := dockerOutput("inspect", name+"-1"); err == nil {
			t.Errorf("%s-1 was left behind: %s", name, out)
		}
		nothingLeft("a conflicting up")
		reliability.Record(t, reliability.BadInput, "`rfenv up --name X --replicas 2` while a container rfenv did not create is named X-0",
			fmt.Sprintf("exit 5: %q; the foreign container still runs untouched; the replica it had started was removed; no state entry", firstLine(r.stderr)),
			reliability.NoCalls("the foreign container (same ID, running), replica 1 (removed) and the state entry (none)"))
	})

	t.Run("name taken by another state dir", func(t *testing.T) {
		img := e2e.Image(t, "hostile")
		name := uniqueName("hshared")
		otherDir := e2e.StateDir(t)
		other := newCLI(t, otherDir)
		theirs := decodeJSON[envView](t, other.ok("up", img, "--name", name, "--json").stdout)
		assertNoPorts(t, docker, otherDir)
		r := c.fails(ExitConflict, "up", img, "--name", name)
		if !strings.Contains(r.stderr, "another rfenv state directory") || !strings.Contains(r.stderr, state.StateID(otherDir)) {
			t.Errorf("stderr should say the container belongs to another state directory: %s", r.stderr)
		}
		before := served(t, other, name)
		answered := 0
		if got := strings.TrimSpace(other.ok("call", name, "echo", "--arg", "value=1").stdout); got != "1" {
			t.Errorf("the other state dir's environment stopped answering: %s", got)
		} else {
			answered++
		}
		executed := executedSince(t, other, name, before)
		if s := dockerCLI(t, "inspect", "-f", "{{.Id}}", name+"-0"); s != theirs.Instances[0].ID {
			t.Errorf("the other state dir's container was replaced")
		}
		nothingLeft("a conflicting up")
		reliability.Record(t, reliability.BadInput, "`rfenv up --name X` while another state directory runs an environment X",
			fmt.Sprintf("exit 5: %q; the other environment keeps running and answering; nothing left here", firstLine(r.stderr)),
			reliability.Calls(1, answered, executed, byShimStats))
	})
}

// TestE2EHardeningBadCalls: malformed arguments, arguments that do not fit the signature, results
// that cannot be serialised, and names that are not methods, each with its exit code and a message
// that says what is wrong; the replicas serve on.
func TestE2EHardeningBadCalls(t *testing.T) {
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	name := uniqueName("hbad")
	c.ok("up", e2e.Image(t, "hostile"), "--name", name, "--replicas", "2")
	assertNoPorts(t, e2e.Docker(t), dir)

	cases := []struct {
		fault string
		code  int
		args  []string
		want  []string
	}{
		{"`--arg` without `=`", ExitUsage, []string{"--arg", "novalue"}, []string{`"novalue"`, "KEY=VALUE"}},
		{"`--arg` with an empty key", ExitUsage, []string{"--arg", "=5"}, []string{"KEY=VALUE"}},
		{"`--args-json` that is not JSON", ExitUsage, []string{"--args-json", "{nope"}, []string{"--args-json"}},
		{"`--args-json` that is a JSON string, not an object or array", ExitUsage, []string{"--args-json", `"x"`}, []string{"--args-json"}},
		{"`--args-json @file` of a file that does not exist", ExitUsage, []string{"--args-json", "@/nonexistent/args.json"}, []string{"/nonexistent/args.json"}},
		{"the same argument twice", ExitUsage, []string{"--arg", "value=1", "--arg-str", "value=2"}, []string{"given twice"}},
	}
	// answeredWith counts a refused call as answered when it exited with its code and a message.
	answeredWith := func(r result, code int) int {
		if r.code == code && strings.TrimSpace(r.stderr) != "" {
			return 1
		}
		return 0
	}
	for _, tc := range cases {
		before := served(t, c, name)
		r := c.fails(tc.code, append([]string{"call", name, "echo"}, tc.args...)...)
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr should contain %q: %s", tc.fault, w, r.stderr)
			}
		}
		executed := executedSince(t, c, name, before)
		if executed != 0 {
			t.Errorf("%s: the replicas counted %d calls, want none (refused before any request)", tc.fault, executed)
		}
		reliability.Record(t, reliability.BadInput, tc.fault, fmt.Sprintf("exit %d before any request: %q", tc.code, firstLine(r.stderr)),
			reliability.Calls(1, answeredWith(r, tc.code), executed, byShimStats))
	}

	// Arguments that do not bind: the server says which and shows the signature.
	for _, tc := range []struct {
		fault  string
		method string
		args   []string
		want   string
	}{
		{"an unknown keyword argument", "make", []string{"--arg", "n=3", "--arg", "colour=red"}, "colour"},
		{"a missing required argument", "make", []string{"--arg", "char=y"}, "'n'"},
		{"too many positional arguments", "make", []string{"--args-json", "[1, 2, 3]"}, "too many"},
	} {
		before := served(t, c, name)
		r := c.fails(ExitUsage, append([]string{"call", name, tc.method}, tc.args...)...)
		if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "(n: int, char: str = 'x') -> str") {
			t.Errorf("%s: stderr should say %q and show the signature: %s", tc.fault, tc.want, r.stderr)
		}
		reliability.Record(t, reliability.BadInput, tc.fault+" (signature `make(n: int, char: str = 'x')`)",
			fmt.Sprintf("exit 2; the server answered 400 without running the method: %q", firstLine(r.stderr)),
			reliability.Calls(1, answeredWith(r, ExitUsage), executedSince(t, c, name, before), byShimStats))
	}

	// A result that is not JSON-serialisable: exit 1, naming the type.
	before := served(t, c, name)
	r := c.fails(ExitMethodRaised, "call", name, "opaque")
	if !strings.Contains(r.stderr, "Opaque") || !strings.Contains(r.stderr, "not JSON-serialisable") {
		t.Errorf("stderr should name the type Opaque: %s", r.stderr)
	}
	reliability.Record(t, reliability.BadInput, "a method returning an object that is not JSON-serialisable",
		fmt.Sprintf("exit 1: %q", firstLine(r.stderr)),
		reliability.Calls(1, answeredWith(r, ExitMethodRaised), executedSince(t, c, name, before), byShimStats))

	// Names that are not methods.
	notMethods := []string{"__init__", "_private", "__class__", "hoard", "Opaque", "os"}
	before = served(t, c, name)
	answered := 0
	for _, m := range notMethods {
		r = c.fails(ExitNotFound, "call", name, m)
		if !strings.Contains(r.stderr, "no method") || !strings.Contains(r.stderr, "echo") {
			t.Errorf("call %s: stderr should say there is no such method and list the methods: %s", m, r.stderr)
		}
		answered += answeredWith(r, ExitNotFound)
	}
	reliability.Record(t, reliability.BadInput, "calling `__init__`, `_private`, `__class__`, an attribute, a class and an imported module by name",
		fmt.Sprintf("exit 3 for each, nothing run; the message lists the methods: %q", firstLine(r.stderr)),
		reliability.Calls(len(notMethods), answered, executedSince(t, c, name, before), byShimStats))

	// The replicas serve on.
	if got := strings.TrimSpace(c.ok("call", name, "echo", "--arg", "value=ok").stdout); got != `"ok"` {
		t.Errorf("echo after the bad calls = %s", got)
	}
}

// TestE2EHardeningLargePayloads: 16 MiB arguments and results go through the CLI (--args-json @file)
// and the library; a request beyond the 64 MiB body limit, and a result beyond the reply limit, are
// clear errors, and the replica serves on.
func TestE2EHardeningLargePayloads(t *testing.T) {
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	name := uniqueName("hbig")
	c.ok("up", e2e.Image(t, "hostile"), "--name", name)
	assertNoPorts(t, e2e.Docker(t), dir)
	const size = 16 << 20
	big := strings.Repeat("0123456789abcdef", size/16)
	sum := sha256.Sum256([]byte(big))
	wantDigest := fmt.Sprintf(`{"len":%d,"sha256":"%s"}`, size, hex.EncodeToString(sum[:]))

	// CLI: a 16 MiB argument from a file, echoed back (16 MiB each way), and digested in the container.
	before := served(t, c, name)
	bigAnswered := 0
	argFile := filepath.Join(t.TempDir(), "args.json")
	body, _ := json.Marshal(map[string]string{"value": big})
	os.WriteFile(argFile, body, 0o644)
	r := c.ok("call", name, "echo", "--args-json", "@"+argFile, "--timeout", "60s")
	if strings.TrimSpace(r.stdout) != `"`+big+`"` {
		t.Errorf("echo of 16 MiB printed %d bytes, not the argument", len(r.stdout))
	} else {
		bigAnswered++
	}
	cliTook := r.elapsed
	if got := strings.TrimSpace(c.ok("call", name, "digest", "--args-json", "@"+argFile).stdout); got != wantDigest {
		t.Errorf("digest = %s, want %s", got, wantDigest)
	} else {
		bigAnswered++
	}
	r = c.ok("call", name, "make", "--arg", fmt.Sprintf("n=%d", size))
	if len(strings.TrimSpace(r.stdout)) != size+2 {
		t.Errorf("a 16 MiB result printed %d bytes", len(r.stdout))
	} else {
		bigAnswered++
	}

	// Library.
	lib, err := rfenv.New(rfenv.WithStateDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, err := lib.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Release()
	start := time.Now()
	var echoed string
	if err := env.CallInto(ctx, "echo", map[string]any{"value": big}, &echoed); err != nil || echoed != big {
		t.Fatalf("library echo of 16 MiB: %d bytes back, err %v", len(echoed), err)
	}
	libTook := time.Since(start)
	bigAnswered++
	bigExecuted := executedSince(t, c, name, before)

	// Beyond the limit: a 65 MiB argument is refused by the server with 413, before it is read.
	before = served(t, c, name)
	hugeAnswered := 0
	huge := strings.Repeat("x", 65<<20)
	_, err = env.Call(ctx, "echo", map[string]any{"value": huge})
	if !errors.Is(err, errs.Usage) || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("a 65 MiB argument: err %v, want a usage error about the limit", err)
	} else {
		hugeAnswered++
	}
	hugeFile := filepath.Join(t.TempDir(), "huge.json")
	hb, _ := json.Marshal(map[string]string{"value": huge})
	os.WriteFile(hugeFile, hb, 0o644)
	r = c.fails(ExitUsage, "call", name, "echo", "--args-json", "@"+hugeFile)
	if !strings.Contains(r.stderr, "exceeds the limit of 67108864 bytes") {
		t.Errorf("stderr should give the limit: %s", r.stderr)
	} else {
		hugeAnswered++
	}
	tooBigArg := firstLine(r.stderr)
	hugeExecuted := executedSince(t, c, name, before)
	before = served(t, c, name)
	resultAnswered := 0
	// A result beyond the reply limit.
	r = c.fails(ExitInfra, "call", name, "make", "--arg", fmt.Sprintf("n=%d", 65<<20), "--timeout", "60s")
	if !strings.Contains(r.stderr, "larger than 64 MiB, the limit") || strings.Contains(r.stderr, "--retries") {
		t.Errorf("stderr should say the reply is too large: %s", r.stderr)
	} else {
		resultAnswered++
	}
	tooBigResult := firstLine(r.stderr)
	if got := strings.TrimSpace(c.ok("call", name, "echo", "--arg", "value=1").stdout); got != "1" {
		t.Errorf("echo after the large payloads = %s", got)
	} else {
		resultAnswered++
	}
	resultExecuted := executedSince(t, c, name, before)
	reliability.Record(t, reliability.BadInput, "16 MiB arguments and results (CLI `--args-json @file`, the Go library)",
		fmt.Sprintf("echoed intact both ways (CLI round trip %s, library %s); the container's sha256 of the argument matches", secs(cliTook), secs(libTook)),
		reliability.Calls(4, bigAnswered, bigExecuted, byShimStats))
	reliability.Record(t, reliability.BadInput, "a 65 MiB argument (over the 64 MiB body limit)",
		fmt.Sprintf("exit 2 (CLI) and a usage error (library): the server answered 413 from the Content-Length without reading the body: %q", tooBigArg),
		reliability.Calls(2, hugeAnswered, hugeExecuted, byShimStats))
	reliability.Record(t, reliability.BadInput, "a 65 MiB result (over the 64 MiB reply limit)",
		fmt.Sprintf("exit 4: %q; the replica stays in rotation and serves the next call", tooBigResult),
		reliability.Calls(2, resultAnswered, resultExecuted, byShimStats))
}

// TestE2EHardeningAwkwardResults: NaN and the infinities become strings; text that is not valid
// UTF-8 (lone surrogates, bytes decoded with surrogateescape) is escaped, so the output is always
// valid JSON and valid UTF-8.
func TestE2EHardeningAwkwardResults(t *testing.T) {
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	name := uniqueName("hodd")
	c.ok("up", e2e.Image(t, "hostile"), "--name", name)
	assertNoPorts(t, e2e.Docker(t), dir)

	before := served(t, c, name)
	out := strings.TrimSpace(c.ok("call", name, "specials").stdout)
	want := `{"nan":"NaN","inf":"Infinity","ninf":"-Infinity","list":[1.5,"NaN","-Infinity"],"Infinity":"key"}`
	specialsAnswered := 0
	if out != want {
		t.Errorf("specials = %s, want %s", out, want)
	} else {
		specialsAnswered++
	}
	specialsExecuted := executedSince(t, c, name, before)
	before = served(t, c, name)
	out = strings.TrimSpace(c.ok("call", name, "surrogates").stdout)
	if !json.Valid([]byte(out)) || !utf8.ValidString(out) {
		t.Errorf("surrogates printed invalid JSON or UTF-8: %q", out)
	}
	for _, w := range []string{`lone \udcff here`, `caf\udce9 \udcff`, `ok \u00e9 \u2713`} {
		if !strings.Contains(out, w) {
			t.Errorf("surrogates = %s, want it to contain %s", out, w)
		}
	}
	// The library hands the same escaped JSON to Go, which decodes a lone surrogate as U+FFFD.
	lib, err := rfenv.New(rfenv.WithStateDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	env, err := lib.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Release()
	var texts []string
	if err := env.CallInto(context.Background(), "surrogates", nil, &texts); err != nil {
		t.Fatal(err)
	}
	if texts[0] != "lone \uFFFD here" || texts[2] != "ok é ✓" {
		t.Errorf("decoded = %q", texts)
	}
	// Both surrogates calls got a result (checked above, or the test has failed).
	surrogatesExecuted := executedSince(t, c, name, before)
	reliability.Record(t, reliability.BadInput, "results holding NaN, Infinity and -Infinity (as values, in lists, as a key)",
		"converted to the strings \"NaN\", \"Infinity\", \"-Infinity\" as documented; output is valid JSON",
		reliability.Calls(1, specialsAnswered, specialsExecuted, byShimStats))
	reliability.Record(t, reliability.BadInput, "results holding text that is not valid UTF-8 (a lone surrogate; bytes decoded with surrogateescape)",
		"escaped as `\\udcXX` in valid ASCII JSON (valid UTF-8 on stdout); the rest of the text intact; Go's decoder turns the escapes into U+FFFD",
		reliability.Calls(2, 2, surrogatesExecuted, byShimStats))
}

var (
	ipv4Re   = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
	uniqueRe = regexp.MustCompile(`\bh[a-z]+-[0-9a-f]{6}\b`)
	stateRe  = regexp.MustCompile(`rfenv\.state=[0-9a-f]{12}`)
)

// firstLine is the first line of a command's stderr without the "error: " prefix, for RELIABILITY.md,
// with what changes from run to run (unique names, container addresses) replaced by placeholders.
func firstLine(stderr string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n")
	line = strings.TrimPrefix(line, "error: ")
	line = uniqueRe.ReplaceAllString(line, "NAME")
	line = ipv4Re.ReplaceAllString(line, "IP")
	line = stateRe.ReplaceAllString(line, "rfenv.state=ID")
	if len(line) > 220 {
		line = line[:220] + "…"
	}
	return line
}

// dockerOutput runs the docker command line and returns its output and error (for expected failures).
func dockerOutput(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
