package cmd

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// startOutside runs a container the way a user would by hand (no rfenv labels) and returns its IP.
func startOutside(t *testing.T, image string, env ...string) string {
	t.Helper()
	name := fmt.Sprintf("rfenv-outside-%d", time.Now().UnixNano())
	args := []string{"run", "-d", "--name", name}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	args = append(args, image)
	if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	out, err := exec.Command("docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestE2EAttach: servers started outside rfenv work as a pool after attach; down only forgets them.
func TestE2EAttach(t *testing.T) {
	c := newCLI(t, e2e.StateDir(t))
	ip1 := startOutside(t, e2e.Image(t, "actor"), "RFENV_TOKEN=outside-token", "RFENV_REPLICA=a")
	ip2 := startOutside(t, e2e.Image(t, "actor"), "RFENV_TOKEN=outside-token", "RFENV_REPLICA=b")
	url1, url2 := "http://"+ip1+":8000", "http://"+ip2+":8000"

	// The servers start in the background: attach fails until they answer /health, then works.
	e2e.Eventually(t, 20*time.Second, "attach to succeed", func() bool {
		return c.run("attach", "ext", url1, url2, "--token", "outside-token").code == 0
	})
	if got := strings.TrimSpace(c.ok("call", "ext", "add", "--arg", "a=1", "--arg", "b=2").stdout); got != "3" {
		t.Errorf("add = %s", got)
	}
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		seen[strings.Trim(strings.TrimSpace(c.ok("call", "ext", "replica").stdout), `"`)] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("calls reached %v, want both attached servers", seen)
	}
	ms := decodeJSON[[]pool.Method](t, c.ok("methods", "ext", "--json").stdout)
	if len(ms) == 0 {
		t.Error("no methods from the attached servers")
	}
	st := decodeJSON[pool.Stats](t, c.ok("stats", "ext", "--json").stdout)
	if st.HealthyInstances != 2 || st.TotalRequests < 21 {
		t.Errorf("stats = %+v", st)
	}
	ls := decodeJSON[[]envView](t, c.ok("ls", "--json").stdout)
	if len(ls) != 1 || !ls[0].Attached {
		t.Errorf("ls = %+v", ls)
	}
	c.fails(ExitUsage, "attach", e2e.Name("bad"), "not a url!")
	// A wrong token is refused by the servers themselves.
	c.ok("attach", "wrongtoken", url1, "--token", "guess")
	if r := c.fails(ExitInfra, "call", "wrongtoken", "add", "--arg", "a=1"); !strings.Contains(r.stderr, "token") {
		t.Errorf("wrong token: %s", r.stderr)
	}
	c.ok("down", "wrongtoken")
	r := c.ok("down", "ext")
	if !strings.Contains(r.stderr, "forgot") {
		t.Errorf("down of an attached environment: %s", r.stderr)
	}
	// Still serving after down: rfenv never touched it.
	e2e.Eventually(t, 5*time.Second, "the outside server to keep serving", func() bool {
		return c.run("attach", "ext2", url1, "--token", "outside-token").code == 0
	})
	c.ok("down", "ext2")

	// An http server started outside rfenv.
	ip3 := startOutside(t, e2e.Image(t, "http"))
	e2e.Eventually(t, 20*time.Second, "attach to the http server", func() bool {
		return c.run("attach", e2e.Name("web"), "http://"+ip3+":8000").code == 0
	})
	if got := strings.TrimSpace(c.ok("call", e2e.Name("web"), "add", "--arg", "a=2").stdout); got != `{"sum":3}` {
		t.Errorf("http add = %s", got)
	}
	c.ok("down", e2e.Name("web"))
}
