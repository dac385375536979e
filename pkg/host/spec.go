// Package host names the places rfenv puts replicas on: the local Docker daemon, a unix socket, a
// remote daemon over SSH, or a Kubernetes cluster. pkg/dockerhost connects to the Docker ones.
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
	K8s   Kind = "k8s"   // a Kubernetes cluster (see pkg/kube): no Docker daemon at all
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
	// Kubernetes target, for Kind K8s: the kubeconfig context (empty: the current one) and the
	// namespace (empty: the context's, else "default").
	Context, Namespace string
}

func (s Spec) String() string { return s.Raw }

// Parse reads a host spec: "localhost" (or empty), "unix:///path.sock",
// "ssh://[user@]host[:port][/remote/docker.sock]" or "k8s://[CONTEXT][/NAMESPACE]".
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
	case strings.HasPrefix(s, "k8s://"):
		return parseK8s(s)
	default:
		return Spec{}, errs.New(errs.Usage, "host %q: expected localhost, unix:///path/to/docker.sock, ssh://[user@]host[:port] or k8s://[context][/namespace]", s)
	}
}

// parseK8s reads k8s://[CONTEXT][/NAMESPACE]. Context names may hold characters a URL host cannot
// (e.g. "arn:aws:eks:...:cluster/x" has a slash; such a context needs the namespace given too), so
// the namespace is what follows the last slash.
func parseK8s(s string) (Spec, error) {
	rest := strings.TrimPrefix(s, "k8s://")
	sp := Spec{Kind: K8s}
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		sp.Context, sp.Namespace = rest[:i], rest[i+1:]
	} else {
		sp.Context = rest
	}
	if strings.ContainsAny(rest, "?#") || strings.ContainsAny(sp.Context, " \t\n") {
		return Spec{}, errs.New(errs.Usage, "host %q: expected k8s://[context][/namespace]", s)
	}
	if sp.Namespace != "" && !isDNSLabel(sp.Namespace) {
		return Spec{}, errs.New(errs.Usage, "host %q: namespace %q is not a valid Kubernetes namespace name", s, sp.Namespace)
	}
	sp.Raw = "k8s://" + sp.Context
	if sp.Namespace != "" {
		sp.Raw += "/" + sp.Namespace
	}
	return sp, nil
}

// isDNSLabel says whether s is an RFC 1123 label: what Kubernetes namespaces and names must be.
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
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
