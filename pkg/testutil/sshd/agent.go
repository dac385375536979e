//go:build linux

package sshd

import (
	"bufio"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// StartAgent runs the real ssh-agent on a socket of its own, stopped when the test ends, and returns
// the socket's path.
func StartAgent(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Fatalf("ssh-agent missing: apt-get install openssh-client")
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// ssh-agent prints SSH_AUTH_SOCK=... once its socket listens.
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SSH_AUTH_SOCK=") {
		t.Fatalf("ssh-agent did not start: %q, %v", line, err)
	}
	go io.Copy(io.Discard, out)
	return sock
}
