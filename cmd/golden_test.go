package cmd

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden with the current output")

// goldenCase is one command whose output is compared with testdata/golden/NAME.golden.
type goldenCase struct {
	name   string
	args   []string
	tty    bool // stdout and stderr are terminals (colour off)
	stderr bool // the golden file holds stderr too (status lines; not progress)
	stats  bool // a stats table: its latency columns vary
}

// normaliser replaces what changes from run to run with placeholders.
type normaliser struct {
	literal []string // exact strings (temporary directories) → their placeholder, in pairs
}

var (
	reSHA        = regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	reHex64      = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	reHex12      = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	reIPv4       = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
	reTime       = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	reTookDur    = regexp.MustCompile(`\bin (\d+h)?(\d+m)?\d+(\.\d+)?(ns|µs|ms|s|m|h)\b`)
	reJSONNum    = regexp.MustCompile(`"(mean_ms|p50_ms|uptime_s|mean|p50|Duration|duration_ms|seconds)":(\s*)[0-9.eE+-]+`)
	reLatencyCol = regexp.MustCompile(`\b\d+\.\d\d\b`) // the stats table's mean_ms and p50_ms
	reVersionTxt = regexp.MustCompile(`rfenv \S+ \(commit [^,]+, built [^,]+, go[^,]+, [^,]+, shim protocol`)
	reVersionKey = regexp.MustCompile(`"(version|commit|date|go|platform)":(\s*)"[^"]*"`)
	reSpaces     = regexp.MustCompile(` {2,}`)
)

func (n normaliser) apply(s string, tty, stats bool) string {
	for i := 0; i+1 < len(n.literal); i += 2 {
		s = strings.ReplaceAll(s, n.literal[i], n.literal[i+1])
	}
	s = reSHA.ReplaceAllString(s, "sha256:<IMAGE_ID>")
	s = reHex64.ReplaceAllString(s, "<CONTAINER_ID>")
	s = reHex12.ReplaceAllString(s, "<SHORT_ID>")
	s = reIPv4.ReplaceAllString(s, "<IP>")
	s = reTime.ReplaceAllString(s, "<TIME>")
	s = reTookDur.ReplaceAllString(s, "in <DURATION>")
	s = reJSONNum.ReplaceAllString(s, `"$1":$2<N>`)
	if stats {
		s = reLatencyCol.ReplaceAllString(s, "<MS>")
	}
	s = reVersionTxt.ReplaceAllString(s, "rfenv <VERSION> (commit <COMMIT>, built <DATE>, <GO>, <PLATFORM>, shim protocol")
	s = reVersionKey.ReplaceAllString(s, `"$1":$2"<X>"`)
	if tty {
		// A terminal's table pads its columns to their widest cell, and placeholders do not keep
		// the widths of what they replace: compare the cells, not the padding.
		lines := strings.Split(s, "\n")
		for i, l := range lines {
			lines[i] = strings.TrimRight(reSpaces.ReplaceAllString(l, "  "), " ")
		}
		s = strings.Join(lines, "\n")
	}
	return s
}

// runStreams runs rfenv in-process with the given terminal and colour settings.
func (c *cli) runStreams(tty, color bool, args ...string) result {
	c.t.Helper()
	ios, _, out, errOut := iostreams.Test()
	ios.SetTTY(tty)
	ios.SetColor(color)
	code := Execute(context.Background(), ios, c.getenv, append([]string{"--state-dir", c.stateDir}, args...))
	r := result{stdout: out.String(), stderr: errOut.String(), code: code}
	if code != 0 {
		c.t.Fatalf("rfenv %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, r.stdout, r.stderr)
	}
	return r
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/ -run TestE2EGolden -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from %s (run with -update if the change is intended)\n--- want\n%s\n--- got\n%s", name, path, want, got)
	}
}

// TestE2EGolden compares the human output (terminal and pipe) and the --json output of every data
// command with golden files, on a real environment, after replacing what changes from run to run.
func TestE2EGolden(t *testing.T) {
	stateDir := e2e.StateDir(t)
	c := newCLI(t, stateDir)
	norm := normaliser{literal: []string{stateDir, "<STATE_DIR>", c.env["XDG_CONFIG_HOME"], "<CONFIG_HOME>", e2e.Root(t), "<REPO>"}}
	dir := e2e.EnvDir(t, "actor")
	const tag, name = "rfenv-test-golden-actor:latest", "rfx-golden"

	var cases []goldenCase
	modes := func(cmd string, args []string, json, stderr bool) {
		stats := cmd == "stats"
		cases = append(cases,
			goldenCase{name: cmd + "_tty", args: args, tty: true, stderr: stderr, stats: stats},
			goldenCase{name: cmd + "_plain", args: args, stderr: stderr, stats: stats})
		if json {
			cases = append(cases, goldenCase{name: cmd + "_json", args: append(append([]string{}, args...), "--json")})
		}
	}
	modes("build", []string{"build", dir, "-t", tag, "--progress", "quiet"}, true, true)
	modes("up", []string{"up", tag, "--name", name, "--replicas", "2", "--lb", "round_robin"}, true, false)
	// Two calls: one on each replica (round robin), so the stats below are the same every run.
	modes("call", []string{"call", name, "point"}, false, false)
	modes("methods", []string{"methods", name}, true, false)
	modes("stats", []string{"stats", name}, true, false)
	modes("ls", []string{"ls"}, true, false)
	modes("config", []string{"config"}, true, false)
	modes("version", []string{"version"}, true, false)

	for _, gc := range cases {
		r := c.runStreams(gc.tty, false, gc.args...)
		if strings.Contains(r.stdout+r.stderr, "\x1b[") {
			t.Errorf("%s: ANSI escapes with colour off: %q", gc.name, r.stdout)
		}
		got := "$ rfenv " + strings.Join(gc.args, " ") + "\n" + norm.apply(r.stdout, gc.tty, gc.stats)
		if gc.stderr {
			got += "--- stderr\n" + norm.apply(r.stderr, gc.tty, false)
		}
		checkGolden(t, gc.name, norm.apply(got, false, false))
	}

	// Colour only when asked for: a terminal with colour on gets escapes, the same without none.
	plain := c.runStreams(true, false, "ls")
	colour := c.runStreams(true, true, "ls")
	if strings.Contains(plain.stdout, "\x1b[") || !strings.Contains(colour.stdout, "\x1b[") {
		t.Errorf("ls on a terminal: colour off %q, colour on %q", plain.stdout, colour.stdout)
	}
	if stripANSI(colour.stdout) != plain.stdout {
		t.Errorf("colour changed the text, not only its colours:\n%q\n%q", stripANSI(colour.stdout), plain.stdout)
	}
	colourErr := c.runStreams(true, true, "up", tag, "--name", name, "--replicas", "2", "--lb", "round_robin")
	if !strings.Contains(colourErr.stderr, "\x1b[") {
		t.Errorf("status lines on a colour terminal have no colour: %q", colourErr.stderr)
	}
}

var reANSI = regexp.MustCompile(`\x1b\[[0-9;]*m`)

func stripANSI(s string) string { return reANSI.ReplaceAllString(s, "") }
