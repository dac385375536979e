package cmd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// complete runs cobra's hidden __complete command in-process, as the shell scripts do, and returns
// the suggested values (descriptions cut off) and the directive.
func (c *cli) complete(args ...string) ([]string, cobra.ShellCompDirective) {
	c.t.Helper()
	r := c.ok(append([]string{"__complete"}, args...)...)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, ":") {
		c.t.Fatalf("__complete %v: no directive line in %q", args, r.stdout)
	}
	d, err := strconv.Atoi(last[1:])
	if err != nil {
		c.t.Fatalf("__complete %v: directive %q", args, last)
	}
	var values []string
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t")
		values = append(values, v)
	}
	return values, cobra.ShellCompDirective(d)
}

func (c *cli) expectCompletion(want string, dir cobra.ShellCompDirective, args ...string) {
	c.t.Helper()
	got, d := c.complete(args...)
	if strings.Join(got, ",") != want || d != dir {
		c.t.Errorf("complete %q = %v (directive %d), want [%s] (directive %d)", args, got, d, want, dir)
	}
}

const (
	noFile        = cobra.ShellCompDirectiveNoFileComp
	noFileNoSpace = cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
)

// TestCompletionStatic: values of enumerated flags and directory arguments, no state needed.
func TestCompletionStatic(t *testing.T) {
	c := newCLI(t, t.TempDir())
	c.expectCompletion("random,round_robin,least_busy", noFile, "call", "e", "m", "--lb", "")
	c.expectCompletion("round_robin", noFile, "up", "img", "--lb", "ro")
	c.expectCompletion("function,http", noFile, "up", "img", "--type", "")
	c.expectCompletion("function,http", noFile, "build", ".", "--type", "")
	c.expectCompletion("http", noFile, "init", "dir", "--type", "h")
	c.expectCompletion("auto,plain,quiet,rawjson", noFile, "build", ".", "--progress", "")
	c.expectCompletion("", cobra.ShellCompDirectiveFilterDirs, "init", "")
	c.expectCompletion("", cobra.ShellCompDirectiveFilterDirs, "build", "")
	// No environment yet: nothing to suggest, and no file names either.
	c.expectCompletion("", noFile, "call", "")
	c.expectCompletion("", noFile, "stats", "")
	c.expectCompletion("", noFile, "call", "nope", "")
	c.expectCompletion("", noFile, "call", "nope", "add", "--arg", "")
	// Hosts: localhost, the configured ones.
	c.env["RFENV_HOSTS"] = "localhost,ssh://gpu1"
	c.expectCompletion("localhost,ssh://gpu1", noFile, "up", "img", "--host", "")
	c.expectCompletion("ssh://gpu1", noFile, "down", "--host", "ss")
}

// TestE2ECompletion: environment names from the state file, method and parameter names from a
// running environment.
func TestE2ECompletion(t *testing.T) {
	c := newCLI(t, e2e.StateDir(t))
	tag := e2e.Image(t, "actor")
	c.ok("up", tag, "--name", e2e.Name("rfx-compl"), "--replicas", "2")
	c.ok("up", e2e.Image(t, "module"), "--name", e2e.Name("rfx-compm"))

	for _, cmd := range []string{"call", "methods", "stats", "logs", "down"} {
		c.expectCompletion(e2e.Name("rfx-compl")+","+e2e.Name("rfx-compm"), noFile, cmd, "")
		c.expectCompletion(e2e.Name("rfx-compm"), noFile, cmd, e2e.Name("rfx-compm"))
	}
	c.expectCompletion("", noFile, "methods", e2e.Name("rfx-compl"), "")                 // one name only
	c.expectCompletion(e2e.Name("rfx-compm"), noFile, "down", e2e.Name("rfx-compl"), "") // names not given yet
	// Descriptions say what the environment is.
	if r := c.ok("__complete", "stats", e2e.Name("rfx-compl")); !strings.Contains(r.stdout, e2e.Name("rfx-compl")+"\tfunction, 2 replica(s) of "+tag) {
		t.Errorf("environment description: %q", r.stdout)
	}

	// Methods, asked of the running environment: public ones only.
	got, d := c.complete("call", e2e.Name("rfx-compl"), "")
	if d != noFile || !strings.Contains(","+strings.Join(got, ",")+",", ",add,echo,fail,") || strings.Contains(strings.Join(got, ","), "_private") {
		t.Errorf("methods = %v (directive %d)", got, d)
	}
	c.expectCompletion("sleep,sleep_sync", noFile, "call", e2e.Name("rfx-compl"), "sle")
	c.expectCompletion("double,shout", noFile, "call", e2e.Name("rfx-compm"), "")
	if r := c.ok("__complete", "call", e2e.Name("rfx-compl"), "ad"); !strings.Contains(r.stdout, "add\t(a: int, b: int = 1) -> int  Add two integers.") {
		t.Errorf("method description: %q", r.stdout)
	}
	c.expectCompletion("", noFile, "call", e2e.Name("rfx-compl"), "add", "")

	// --arg parameter names, without those already given, with no space after "k=".
	c.expectCompletion("a=,b=", noFileNoSpace, "call", e2e.Name("rfx-compl"), "add", "--arg", "")
	c.expectCompletion("b=", noFileNoSpace, "call", e2e.Name("rfx-compl"), "add", "--arg", "a=1", "--arg", "")
	c.expectCompletion("b=", noFileNoSpace, "call", e2e.Name("rfx-compl"), "add", "-a", "a=1", "--arg-str", "")
	c.expectCompletion("seconds=", noFileNoSpace, "call", e2e.Name("rfx-compl"), "sleep", "--arg", "s")
	c.expectCompletion("", noFile, "call", e2e.Name("rfx-compl"), "add", "--arg", "a=")
	c.expectCompletion("", noFile, "call", e2e.Name("rfx-compl"), "nope", "--arg", "")
	if r := c.ok("__complete", "call", e2e.Name("rfx-compl"), "add", "--arg", ""); !strings.Contains(r.stdout, "a=\tint, required") || !strings.Contains(r.stdout, "b=\tint, default 1") {
		t.Errorf("parameter descriptions: %q", r.stdout)
	}

	c.expectCompletion("0,1", noFile, "logs", e2e.Name("rfx-compl"), "--replica", "")
	c.ok("down", "--all")
}

// TestCompletionScriptsCurrent: the scripts checked in under completions/ are what this code
// generates (regenerate them with `make completions`).
func TestCompletionScriptsCurrent(t *testing.T) {
	c := newCLI(t, t.TempDir())
	for shell, file := range map[string]string{
		"bash": "rfenv.bash", "zsh": "_rfenv", "fish": "rfenv.fish", "powershell": "rfenv.ps1",
	} {
		want, err := os.ReadFile(filepath.Join(e2e.Root(t), "completions", file))
		if err != nil {
			t.Fatalf("%v (run make completions)", err)
		}
		if got := c.ok("completion", shell).stdout; got != string(want) {
			t.Errorf("completions/%s is not what `rfenv completion %s` prints: run make completions", file, shell)
		}
	}
}
