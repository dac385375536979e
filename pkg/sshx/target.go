// Package sshx is rfenv's SSH transport, in pure Go (golang.org/x/crypto/ssh; no ssh binary):
// one connection per target, shared by the whole process, that opens channels to the remote
// Docker socket and to TCP addresses (containers) behind the server.
//
// It reads ~/.ssh/config (HostName, User, Port, IdentityFile, IdentityAgent, UserKnownHostsFile,
// HashKnownHosts), authenticates with the SSH agent's keys and then key files, always verifies host
// keys against known_hosts (trust on first use only when Options.AcceptNew asks for it), sends
// keepalives, re-establishes a dropped connection on the next dial, and works around the
// delayed-ACK stall that small replies through sshd suffer (see quickack_linux.go).
package sshx

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DefaultSocket is the remote Docker socket used when a target names none.
const DefaultSocket = "/var/run/docker.sock"

// Target is a parsed ssh://[user@]host[:port][/path/to/docker.sock].
type Target struct {
	// User from the URL; empty means ~/.ssh/config's User, then the local user.
	User string
	// Host as written (a name, an ~/.ssh/config alias, an IPv4 address or an IPv6 address without
	// brackets).
	Host string
	// Port from the URL; 0 means ~/.ssh/config's Port, then 22.
	Port int
	// Socket is the remote Docker socket path (DefaultSocket when the URL has no path).
	Socket string
}

// ParseTarget parses ssh://[user@]host[:port][/path/to/docker.sock].
func ParseTarget(s string) (Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, fmt.Errorf("invalid ssh target %q: %v; expected ssh://[user@]host[:port][/path/to/docker.sock]", s, err)
	}
	if u.Scheme != "ssh" {
		return Target{}, fmt.Errorf("invalid ssh target %q: the scheme must be ssh://, as in ssh://user@host:22/var/run/docker.sock", s)
	}
	if u.Opaque != "" || u.Host == "" {
		return Target{}, fmt.Errorf("invalid ssh target %q: no host; expected ssh://[user@]host[:port][/path/to/docker.sock]", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Target{}, fmt.Errorf("invalid ssh target %q: query strings and fragments are not supported; remove the part after ? or #", s)
	}
	t := Target{Host: u.Hostname(), Socket: u.Path}
	if t.Host == "" {
		return Target{}, fmt.Errorf("invalid ssh target %q: no host; expected ssh://[user@]host[:port][/path/to/docker.sock]", s)
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return Target{}, fmt.Errorf("invalid ssh target %q: passwords are not supported; use a key (ssh-agent or IdentityFile) and write ssh://user@host", s)
		}
		t.User = u.User.Username()
		if t.User == "" {
			return Target{}, fmt.Errorf("invalid ssh target %q: empty user name before @; write ssh://user@host or leave out the @", s)
		}
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Target{}, fmt.Errorf("invalid ssh target %q: port %q is not a number between 1 and 65535", s, p)
		}
		t.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return Target{}, fmt.Errorf("invalid ssh target %q: empty port after the colon; remove it or give a port", s)
	}
	if t.Socket == "" || t.Socket == "/" {
		t.Socket = DefaultSocket
	}
	return t, nil
}

// String is the canonical form ssh://[user@]host[:port]/socket, usable as a map key.
func (t Target) String() string {
	var b strings.Builder
	b.WriteString("ssh://")
	if t.User != "" {
		b.WriteString(url.User(t.User).String())
		b.WriteByte('@')
	}
	host := t.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if t.Port != 0 {
		host = net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	}
	b.WriteString(host)
	sock := t.Socket
	if sock == "" {
		sock = DefaultSocket
	}
	b.WriteString(sock)
	return b.String()
}

// hostKey identifies the connection: the socket does not matter, one connection serves any path.
func (t Target) connKey() string {
	t.Socket = "/"
	return t.String()
}
