//go:build linux

package sshx

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
	"github.com/rfenv/rfenv/pkg/testutil/sshd"
)

// TestNetnsContainerReachable checks what other packages' tests rely on: a container on Docker's
// bridge is reachable through an sshd running in a network namespace.
func TestNetnsContainerReachable(t *testing.T) {
	dockertest.Require(t)
	s := sshd.StartInNetns(t)
	c := connect(t, s, hermetic(t, s))

	out, err := exec.Command("docker", "run", "-d", "--rm", "--label", "rfenv.test=sshx",
		dockertest.BaseImage(), "python3", "-m", "http.server", "8000").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v: %s", err, out)
	}
	id := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	out, err = exec.Command("docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", id).CombinedOutput()
	ip := strings.TrimSpace(string(out))
	if err != nil || ip == "" {
		t.Fatalf("docker inspect: %q, %v", out, err)
	}

	hc := tunnelHTTP(c, 1)
	url := "http://" + ip + ":8000/"
	deadline := time.Now().Add(30 * time.Second)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		body, err := get(ctx, hc, url)
		cancel()
		if err == nil && strings.Contains(body, "Directory listing") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s at %s not reachable through the namespace's sshd: %v", id[:12], url, err)
		}
		time.Sleep(wait) // the server in the container starts in the background: nothing to wait on
	}
	if c.Connects() != 1 {
		t.Fatalf("%d connects", c.Connects())
	}
}
