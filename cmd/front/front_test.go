package front

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/rfenv/rfenv/pkg/state"
)

// TestParseCall: the front runs exactly the plain call lines, read as cobra reads them, and leaves
// every other line (and every line cobra would reject or read differently) to the full binary.
func TestParseCall(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		front bool
	}{
		{[]string{"call", "env", "add", "--arg", "a=1"}, true},
		{[]string{"call", "env", "add", "-a", "a=1", "-a=b=2", "--arg-str", "s=x", "--timeout", "1m30s"}, true},
		{[]string{"--state-dir", "/tmp/x", "-q", "call", "env", "add"}, true},
		{[]string{"call", "--verbose", "env", "add", "--state-dir=/tmp/y", "--lb", "round_robin", "--retries", "2"}, true},
		{[]string{"call", "env", "add", "--args-json", "-"}, true},
		{[]string{"call", "env", "add", "--session", "k"}, true},
		{[]string{"call", "env", "add", "--session", "k", "--retries", "1"}, false},
		{[]string{"call", "env", "add", "--batch", "f.jsonl"}, false},
		{[]string{"call", "env", "add", "-j", "4"}, false},
		{[]string{"call", "env", "add", "--ssh-accept-new"}, false},
		{[]string{"call", "env", "add", "--timeout", "soon"}, false},
		{[]string{"call", "env", "add", "--retries", "-1"}, false},
		{[]string{"call", "env"}, false},
		{[]string{"call", "env", "add", "more"}, false},
		{[]string{"call", "env", "add", "--", "x"}, false},
		{[]string{"call", "--help"}, false},
		{[]string{"call", "env", "add", "-h"}, false},
		{[]string{"call", "env", "add", "--no-such-flag"}, false},
		{[]string{"--arg", "a=1", "call", "env", "add"}, false}, // cobra: call's flags go after it
		{[]string{"env", "call", "add"}, false},
		{[]string{"stats", "env"}, false},
		{[]string{"session", "call", "env", "k", "add"}, false},
		{[]string{}, false},
	} {
		l, got := parseCall(tc.args, "60s")
		if got != tc.front {
			t.Errorf("parseCall(%q) runs in the front: %v, want %v", tc.args, got, tc.front)
		}
		if got && (l.Call.Name != "env" || l.Call.Method != "add") {
			t.Errorf("parseCall(%q) read %s.%s, want env.add", tc.args, l.Call.Name, l.Call.Method)
		}
	}
	l, _ := parseCall([]string{"--state-dir", "/s", "call", "-V", "env", "add", "-a", "a=1", "-a=b=2", "--arg-str", "s=x"}, "60s")
	if l.StateDir != "/s" || !l.Verbose || !slices.Equal(l.Call.Arg, []string{"a=1", "b=2"}) || !slices.Equal(l.Call.ArgStr, []string{"s=x"}) || l.Call.Timeout != "60s" {
		t.Errorf("parsed %+v", l)
	}
}

// TestCallable: the front calls Docker replicas on this machine's daemons and attached servers,
// and leaves ssh:// hosts (reached through SSH) and Kubernetes (through the API server) alone.
func TestCallable(t *testing.T) {
	local := state.Instance{Index: 0, Host: "localhost", Address: "172.17.0.2", Port: 8000}
	remote := state.Instance{Index: 1, Host: "ssh://me@box:22", Address: "172.17.0.3", Port: 8000}
	for _, tc := range []struct {
		rec  state.Environment
		want bool
	}{
		{state.Environment{Backend: state.BackendDocker, Instances: []state.Instance{local}}, true},
		{state.Environment{Backend: state.BackendDocker, Instances: []state.Instance{{Host: "unix:///run/docker.sock", Address: "10.0.0.2"}}}, true},
		{state.Environment{Backend: state.BackendDocker, Instances: []state.Instance{local, remote}}, false},
		{state.Environment{Backend: state.BackendDocker}, false},
		{state.Environment{Backend: state.BackendAttached, Instances: []state.Instance{{URL: "http://10.0.0.5:8000"}}}, true},
		{state.Environment{Backend: state.BackendKube, Instances: []state.Instance{{Host: "k8s://"}}}, false},
		{state.Environment{Backend: "swarm", Instances: []state.Instance{local}}, false},
	} {
		if got := callable(&tc.rec); got != tc.want {
			t.Errorf("callable(%+v) = %v, want %v", tc.rec, got, tc.want)
		}
	}
}

// TestFrontLinks: the front's package graph holds none of the packages whose initialisation it
// exists to avoid, and the full binary's does (so the check can fail).
func TestFrontLinks(t *testing.T) {
	heavy := []string{
		"github.com/moby/moby/client", "github.com/moby/buildkit/", "k8s.io/client-go/",
		"google.golang.org/grpc", "golang.org/x/crypto/ssh", "github.com/spf13/cobra",
		"github.com/charmbracelet/lipgloss", "github.com/distribution/reference",
	}
	deps := func(tags ...string) []string {
		args := append(append([]string{"list"}, tags...), "-deps", "github.com/rfenv/rfenv")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v: %s", err, out)
		}
		return strings.Fields(string(out))
	}
	has := func(pkgs []string, prefix string) bool {
		return slices.ContainsFunc(pkgs, func(p string) bool { return strings.HasPrefix(p, prefix) })
	}
	lean, full := deps("-tags", "rfenvlean"), deps()
	for _, h := range heavy {
		if has(lean, h) {
			t.Errorf("the lean front links %s", h)
		}
		if !has(full, h) {
			t.Errorf("the full binary does not link %s: the check proves nothing", h)
		}
	}
}
