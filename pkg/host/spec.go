// Package host names the Docker daemons rfenv places replicas on and connects to them: the local
// daemon, a unix socket, or a remote daemon over SSH. A connection carries both the Docker API client
// and a dialer that reaches container addresses on that host, so a remote container is called through
// the same SSH connection that manages it.
package host

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/rfenv/rfenv/pkg/errs"
)

// Kind says how a daemon is reached.
type Kind string

const (
	Local Kind = "local" // the local daemon, honouring DOCKER_HOST
	Unix  Kind = "unix"  // a daemon socket on this machine
	SSH   Kind = "ssh"   // a remote daemon reached over SSH
)

// LocalName is the spec of the local daemon.
const LocalName = "localhost"

// Spec identifies one daemon. Its String form is what the state file records.
type Spec struct {
	Kind   Kind
	Raw    string // canonical form
	Socket string // unix: the socket path; ssh: the remote socket path
	// SSH target parts, for Kind SSH.
	User, Host, Port string
}

func (s Spec) String() string { return s.Raw }

// Parse reads a host spec: "localhost" (or empty), "unix:///path.sock", or
// "ssh://[user@]host[:port][/remote/docker.sock]".
func Parse(s string) (Spec, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == LocalName || s == "local":
		return Spec{Kind: Local, Raw: LocalName}, nil
	case strings.HasPrefix(s, "unix://"):
		p := strings.TrimPrefix(s, "unix://")
		if !strings.HasPrefix(p, "/") {
			return Spec{}, errs.New(errs.Usage, "host %q: a unix socket path must be absolute, e.g. unix:///var/run/docker.sock", s)
		}
		return Spec{Kind: Unix, Raw: "unix://" + p, Socket: p}, nil
	case strings.HasPrefix(s, "ssh://"):
		u, err := url.Parse(s)
		if err != nil || u.Hostname() == "" {
			return Spec{}, errs.New(errs.Usage, "host %q: expected ssh://[user@]host[:port][/socket]", s)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return Spec{}, errs.New(errs.Usage, "host %q: an ssh host takes no query or fragment", s)
		}
		sp := Spec{Kind: SSH, Host: u.Hostname(), Port: u.Port(), Socket: u.Path}
		if u.User != nil {
			if _, hasPw := u.User.Password(); hasPw {
				return Spec{}, errs.New(errs.Usage, "host %q: passwords in host specs are not supported; use an SSH key or the ssh-agent", s)
			}
			sp.User = u.User.Username()
		}
		sp.Raw = sp.canonicalSSH()
		return sp, nil
	default:
		return Spec{}, errs.New(errs.Usage, "host %q: expected localhost, unix:///path/to/docker.sock or ssh://[user@]host[:port]", s)
	}
}

func (s Spec) canonicalSSH() string {
	var b strings.Builder
	b.WriteString("ssh://")
	if s.User != "" {
		b.WriteString(s.User + "@")
	}
	if strings.Contains(s.Host, ":") {
		b.WriteString("[" + s.Host + "]")
	} else {
		b.WriteString(s.Host)
	}
	if s.Port != "" {
		b.WriteString(":" + s.Port)
	}
	b.WriteString(s.Socket)
	return b.String()
}

// ParseAll parses several specs, defaulting to the local daemon, and rejects duplicates, which would
// silently double the replicas placed on one daemon.
func ParseAll(specs []string) ([]Spec, error) {
	if len(specs) == 0 {
		return []Spec{{Kind: Local, Raw: LocalName}}, nil
	}
	out := make([]Spec, 0, len(specs))
	seen := map[string]bool{}
	for _, s := range specs {
		sp, err := Parse(s)
		if err != nil {
			return nil, err
		}
		if seen[sp.Raw] {
			return nil, errs.New(errs.Usage, "host %s given twice; give each host once", sp.Raw)
		}
		seen[sp.Raw] = true
		out = append(out, sp)
	}
	return out, nil
}

// Place spreads n replicas over hosts in order, wrapping around: replica i goes to hosts[i%len].
func Place(n int, hosts []Spec) []Spec {
	out := make([]Spec, n)
	for i := range out {
		out[i] = hosts[i%len(hosts)]
	}
	return out
}

// Short is a compact label for tables.
func (s Spec) Short() string {
	if s.Kind == SSH {
		return strings.TrimPrefix(s.Raw, "ssh://")
	}
	return s.Raw
}

var _ fmt.Stringer = Spec{}
