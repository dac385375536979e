//go:build linux

package rfenv_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
	"github.com/rfenv/rfenv/pkg/testutil/sshd"
)

// sshLibClient is a library client that reaches the servers with their client keys and a known_hosts
// file trusting them, and reads nothing of the machine's own ssh setup (no ~/.ssh, no agent).
func sshLibClient(t *testing.T, stateDir string, servers ...*sshd.Server) *rfenv.Client {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	var lines []string
	var keys []string
	for _, s := range servers {
		lines = append(lines, s.KnownHostsLine())
		keys = append(keys, s.ClientKeyPath)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := rfenv.New(rfenv.WithStateDir(stateDir), rfenv.WithSSH(rfenv.SSHConfig{
		KnownHostsPath: kh, ConfigPath: "none", IdentityFiles: keys,
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// logins counts the SSH logins a server has accepted so far.
func logins(s *sshd.Server) int { return strings.Count(s.Log(), "Accepted publickey") }

// waitLogins waits until sshd has logged n logins (its log arrives through a pipe, a moment after the
// login), then checks that there are exactly n.
func waitLogins(t *testing.T, s *sshd.Server, n int, what string) {
	t.Helper()
	e2e.Eventually(t, 5*time.Second, "sshd to log the login", func() bool { return logins(s) >= n })
	if got := logins(s); got != n {
		t.Errorf("%s: %d SSH logins to %s, want %d", what, got, s.Addr, n)
	}
}

// callReplica calls the actor's replica method with a deadline.
func callReplica(env *rfenv.Env, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var r string
	err := env.CallInto(ctx, "replica", nil, &r)
	return r, err
}

// TestE2ESSHReconnect: replicas behind two SSH hosts (an sshd on 127.0.0.1 and one in a network
// namespace), each called through one SSH connection that also carried up's Docker API requests.
// The first server is killed: calls fail at once, and after it restarts the same Env's calls succeed
// again over a new connection, which up's Docker requests share. The second host's link is cut: calls
// fail within their deadline, and succeed again once it is restored.
func TestE2ESSHReconnect(t *testing.T) {
	a := sshd.Start(t)
	b := sshd.StartInNetns(t)
	c := sshLibClient(t, e2e.StateDir(t), a, b)
	ctx := context.Background()
	image := e2e.Image(t, "actor")

	envA, err := c.Up(ctx, image, rfenv.WithName(e2e.Name("reca")), rfenv.WithHosts(a.Target("")))
	if err != nil {
		t.Fatal(err)
	}
	defer envA.Release()
	envB, err := c.Up(ctx, image, rfenv.WithName(e2e.Name("recb")), rfenv.WithHosts(b.Target("")))
	if err != nil {
		t.Fatal(err)
	}
	defer envB.Release()
	for i := 0; i < 50; i++ {
		for _, env := range []*rfenv.Env{envA, envB} {
			if r, err := callReplica(env, 10*time.Second); err != nil || r != "0" {
				t.Fatalf("%s: replica() = %q, %v", env.Name(), r, err)
			}
		}
	}
	for _, st := range []struct {
		env  *rfenv.Env
		spec string
	}{{envA, a.Target("")}, {envB, b.Target("")}} {
		sp, _ := host.Parse(st.spec)
		if s := st.env.Stats(ctx); len(s.Instances) != 1 || s.Instances[0].Host != sp.Raw || !s.Instances[0].Healthy {
			t.Errorf("stats of %s = %+v, want one healthy replica on %s", st.env.Name(), s, sp.Raw)
		}
	}
	// up (Docker API) and 50 calls (HTTP to the container) went through one connection per host.
	waitLogins(t, a, 1, "up and calls through "+a.Target(""))
	waitLogins(t, b, 1, "up and calls through "+b.Target(""))

	t.Run("sshd killed and restarted", func(t *testing.T) {
		a.Kill()
		start := time.Now()
		if _, err := callReplica(envA, 10*time.Second); err == nil {
			t.Fatal("a call succeeded with the host's sshd killed")
		} else if !errors.Is(err, errs.Infra) {
			t.Errorf("call with sshd down: %v, want an infrastructure error", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("a call to a host whose sshd is down took %s to fail, want at once", d)
		}
		a.Restart()
		var lastErr error
		e2e.Eventually(t, 30*time.Second, "calls through the restarted sshd to succeed", func() bool {
			var r string
			r, lastErr = callReplica(envA, 5*time.Second)
			return lastErr == nil && r == "0"
		})
		waitLogins(t, a, 2, "after the restart") // one new connection, for everything
		// Docker requests use the new connection too: up again finds and keeps the replica.
		again, err := c.Up(ctx, image, rfenv.WithName(e2e.Name("reca")), rfenv.WithHosts(a.Target("")))
		if err != nil {
			t.Fatalf("up after the reconnect: %v", err)
		}
		again.Release()
		if again.Record().Instances[0].ContainerID != envA.Record().Instances[0].ContainerID {
			t.Errorf("up after the reconnect replaced the replica")
		}
		waitLogins(t, a, 2, "up after the restart")
	})

	t.Run("link cut and restored", func(t *testing.T) {
		b.CutLink()
		start := time.Now()
		if _, err := callReplica(envB, 2*time.Second); err == nil {
			t.Fatal("a call succeeded with the link cut")
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("a call with a 2s deadline took %s with the link cut", d)
		}
		b.RestoreLink()
		e2e.Eventually(t, 60*time.Second, "calls through the restored link to succeed", func() bool {
			r, err := callReplica(envB, 5*time.Second)
			return err == nil && r == "0"
		})
		if logins(b) > 2 {
			t.Errorf("%d logins to %s: more than one reconnect", logins(b), b.Addr)
		}
	})

	if err := envA.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := envB.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if envs, err := c.List(ctx); err != nil || len(envs) != 0 {
		t.Fatalf("List after Close = %v, %v", envs, err)
	}
}

// TestE2ESSHUnreachableHostLibrary: Up over a reachable SSH host, localhost and a host where nothing
// listens fails with an infrastructure error naming that host, and leaves nothing running or recorded.
func TestE2ESSHUnreachableHostLibrary(t *testing.T) {
	a := sshd.Start(t)
	dir := e2e.StateDir(t)
	c := sshLibClient(t, dir, a)
	docker := e2e.Docker(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bad := "ssh://root@" + l.Addr().String()
	l.Close() // nothing listens there now
	_, err = c.Up(context.Background(), e2e.Image(t, "actor"), rfenv.WithName(e2e.Name("unr")), rfenv.WithReplicas(3),
		rfenv.WithHosts("localhost", a.Target(""), bad))
	if err == nil || !errors.Is(err, errs.Infra) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Up with an unreachable host: %v, want an infrastructure error naming %s", err, bad)
	}
	if left := e2e.List(t, docker, state.StateID(dir)); len(left) != 0 {
		t.Errorf("%d containers left after the failed Up", len(left))
	}
	if envs, err := c.List(context.Background()); err != nil || len(envs) != 0 {
		t.Errorf("List after the failed Up = %v, %v", envs, err)
	}
}
