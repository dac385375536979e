package cmd

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/rfenv/rfenv/cmd/iostreams"
)

// TestFrontRuns: the lean front runs calling and inspection itself and hands every other command
// to the full binary, wherever the global flags stand.
func TestFrontRuns(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	root, err := NewRoot(NewFactory(ios, func(string) string { return "" }))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		front bool
	}{
		{[]string{"call", "env", "add", "--arg", "a=1"}, true},
		{[]string{"--state-dir", "/tmp/x", "call", "env", "add"}, true},
		{[]string{"-V", "stats", "env", "--json"}, true},
		{[]string{"session", "open", "env"}, true},
		{[]string{"methods", "env"}, true},
		{[]string{"ls"}, true},
		{[]string{"version"}, true},
		{[]string{"completion", "bash"}, true},
		{[]string{"__complete", "call", ""}, true},
		{[]string{}, true},
		{[]string{"no-such-command"}, true}, // cobra says it is unknown
		{[]string{"build", "./env", "-t", "x"}, false},
		{[]string{"up", "img", "--name", "x"}, false},
		{[]string{"--verbose", "down", "x"}, false},
		{[]string{"dev", "./env"}, false},
		{[]string{"serve"}, false},
		{[]string{"validate", "env", "m"}, false},
		{[]string{"logs", "env"}, false},
		{[]string{"attach", "x", "http://127.0.0.1:1"}, false},
		{[]string{"init", "dir"}, false},
	} {
		if got := frontRuns(root, tc.args); got != tc.front {
			t.Errorf("frontRuns(%q) = %v, want %v", tc.args, got, tc.front)
		}
	}
}

// TestLeanFrontLinks: the lean front's package graph holds none of the packages whose
// initialisation it exists to avoid, and the full binary's does (so the check can fail).
func TestLeanFrontLinks(t *testing.T) {
	heavy := []string{"github.com/moby/buildkit/", "k8s.io/client-go/", "google.golang.org/grpc"}
	deps := func(tags ...string) string {
		args := append([]string{"list"}, tags...)
		out, err := exec.Command("go", append(args, "-deps", "github.com/rfenv/rfenv")...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v: %s", err, out)
		}
		return string(out)
	}
	lean, full := deps("-tags", "rfenvlean"), deps()
	for _, h := range heavy {
		if strings.Contains(lean, h) {
			t.Errorf("the lean front links %s", h)
		}
		if !strings.Contains(full, h) {
			t.Errorf("the full binary does not link %s: the check proves nothing", h)
		}
	}
}
