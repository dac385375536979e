//go:build linux

package sshd

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func dial(t *testing.T, s *Server) (*ssh.Client, error) {
	t.Helper()
	cb, err := knownhosts.New(s.WriteKnownHosts(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	return ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.ClientKey)},
		HostKeyCallback: cb,
		Timeout:         5 * time.Second,
	})
}

func run(t *testing.T, c *ssh.Client, cmd string) string {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, out)
	}
	return string(out)
}

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	c, err := dial(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, c, "echo hello"); got != "hello\n" {
		t.Fatalf("got %q", got)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	s.Kill()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("connection survived Kill")
	}
	if s.Running() {
		t.Fatal("still running after Kill")
	}
	s.Restart()
	c2, err := dial(t, s)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	defer c2.Close()
	// Stop also ends sessions.
	go func() { done <- c2.Wait() }()
	s.Stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("connection survived Stop")
	}
}

func TestNetns(t *testing.T) {
	s := StartInNetns(t)
	c, err := dial(t, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := run(t, c, "ip -4 -o addr show; ls -l /var/run/docker.sock")
	if !strings.Contains(out, s.Netns.NsIP.String()) || !strings.Contains(out, "docker.sock") {
		t.Fatalf("unexpected: %s", out)
	}
	s.CutLink()
	if conn, err := net.DialTimeout("tcp", s.Addr, 300*time.Millisecond); err == nil {
		conn.Close()
		t.Fatal("dial succeeded with the link cut")
	}
	s.RestoreLink()
	if got := run(t, c, "echo back"); got != "back\n" {
		t.Fatalf("got %q", got)
	}
	name := s.Netns.Name
	t.Cleanup(func() {
		// Runs before the harness cleanup (LIFO); checked in TestNetnsCleanup.
		_ = name
	})
}

func TestNetnsCleanup(t *testing.T) {
	var name, hostIf string
	t.Run("inner", func(t *testing.T) {
		ns := NewNetns(t)
		name, hostIf = ns.Name, ns.HostIf
	})
	if _, err := os.Stat("/run/netns/" + name); err == nil {
		t.Fatalf("namespace %s left behind", name)
	}
	if _, err := net.InterfaceByName(hostIf); err == nil {
		t.Fatalf("veth %s left behind", hostIf)
	}
}
