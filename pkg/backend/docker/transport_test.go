package docker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestDaemonOnThisMachine(t *testing.T) {
	for addr, want := range map[string]bool{
		"unix:///var/run/docker.sock":        true,
		"npipe:////./pipe/docker_engine":     true,
		"tcp://127.0.0.1:2375":               true,
		"tcp://localhost:2376":               true,
		"tcp://[::1]:2375":                   true,
		"tcp://10.0.0.7:2375":                false,
		"tcp://docker.example.internal:2376": false,
		"https://192.0.2.1:2376":             false,
	} {
		if got := daemonOnThisMachine(addr); got != want {
			t.Errorf("daemonOnThisMachine(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestIsUnroutable(t *testing.T) {
	wrap := func(errno syscall.Errno) error {
		return fmt.Errorf("probe: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)})
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{wrap(syscall.ENETUNREACH), true},
		{wrap(syscall.EHOSTUNREACH), true},
		{wrap(syscall.ECONNREFUSED), false}, // nothing listens yet: the shim is starting
		{errors.New("503 not ready"), false},
		{nil, false},
	} {
		if got := isUnroutable(tc.err); got != tc.want {
			t.Errorf("isUnroutable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
