package cmd

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/cmd/iostreams"
)

func testRoot(t *testing.T) *cobra.Command {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	root, err := NewRoot(NewFactory(ios, func(string) string { return "" }))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestHelpComplete: every command a user can see documents itself with a summary, a description and
// examples.
func TestHelpComplete(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		// cobra's own help command explains itself; hidden commands (__complete) are not for users.
		if c.Hidden || c.Name() == "help" {
			return
		}
		n++
		if strings.TrimSpace(c.Short) == "" {
			t.Errorf("%s has no Short", c.CommandPath())
		}
		if strings.TrimSpace(c.Long) == "" {
			t.Errorf("%s has no Long", c.CommandPath())
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no Example", c.CommandPath())
		}
		for _, line := range strings.Split(c.Example, "\n") {
			if line != "" && !strings.Contains(line, "rfenv ") {
				t.Errorf("%s: example line %q does not run rfenv", c.CommandPath(), line)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(testRoot(t))
	if n < 15 {
		t.Errorf("walked %d commands; the tree seems incomplete", n)
	}
}

// TestHelpGroups: `rfenv --help` lists the commands under their groups.
func TestHelpGroups(t *testing.T) {
	c := newCLI(t, t.TempDir())
	out := c.ok("--help").stdout
	sections := map[string][]string{
		"Environment lifecycle:": {"init", "build", "up", "down"},
		"Calling:":               {"call"},
		"Inspection:":            {"ls", "methods", "stats", "logs"},
		"Additional Commands:":   {"config", "version", "completion"},
	}
	for title, cmds := range sections {
		i := strings.Index(out, "\n"+title+"\n")
		if i < 0 {
			t.Errorf("--help lacks the %q group:\n%s", title, out)
			continue
		}
		block := out[i+len(title)+2:]
		if end := strings.Index(block, "\n\n"); end >= 0 {
			block = block[:end]
		}
		for _, name := range cmds {
			if !strings.Contains(block, "\n  "+name+" ") && !strings.HasPrefix(block, "  "+name+" ") {
				t.Errorf("%s is not listed under %q:\n%s", name, title, block)
			}
		}
	}
	// Every subcommand's help works and shows its examples.
	for _, name := range []string{"init", "logs", "config", "call", "completion"} {
		if h := c.ok(name, "--help").stdout; !strings.Contains(h, "Examples:") {
			t.Errorf("rfenv %s --help shows no examples:\n%s", name, h)
		}
	}
}
