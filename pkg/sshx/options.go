package sshx

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sshconfig "github.com/kevinburke/ssh_config"
)

// Defaults for Options.
const (
	DefaultKeepAlive   = 30 * time.Second
	DefaultDialTimeout = 10 * time.Second
)

// None disables a file or the agent where Options accepts a path (like OpenSSH's "none").
const None = "none"

// Options configures connections. The zero value reads ~/.ssh/config, ~/.ssh/known_hosts, the
// agent at $SSH_AUTH_SOCK and the default key files, and never trusts an unknown host key.
type Options struct {
	// KnownHostsFiles are the known_hosts files to verify host keys against; AcceptNew appends
	// to the first. Empty: UserKnownHostsFile from the ssh config, else ~/.ssh/known_hosts
	// (plus ~/.ssh/known_hosts2, /etc/ssh/ssh_known_hosts and /etc/ssh/ssh_known_hosts2 when
	// they exist, read only).
	KnownHostsFiles []string
	// ConfigFile is the user's ssh config; "" means ~/.ssh/config, None reads none.
	ConfigFile string
	// SystemConfigFile is read after ConfigFile; "" means /etc/ssh/ssh_config, None reads none.
	SystemConfigFile string
	// IdentityFiles are private keys tried (after the agent's keys) before the ssh config's
	// IdentityFile entries; when neither names any, ~/.ssh/id_ed25519, id_ecdsa and id_rsa.
	IdentityFiles []string
	// AcceptNew trusts the key of a host that has no entry in known_hosts and appends it to the
	// first known_hosts file (trust on first use). A changed key is never accepted. The ssh config's
	// "StrictHostKeyChecking accept-new" turns it on as well.
	AcceptNew bool
	// KeepAlive is the interval between keepalive@openssh.com requests; a request unanswered
	// within one interval marks the connection dead. 0 means DefaultKeepAlive; negative disables.
	KeepAlive time.Duration
	// DialTimeout bounds the TCP connection and the SSH handshake. 0 means DefaultDialTimeout.
	DialTimeout time.Duration
	// AgentSocket is the ssh-agent socket; "" means the ssh config's IdentityAgent, then
	// $SSH_AUTH_SOCK; None disables the agent.
	AgentSocket string
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger

	// disableQuickAck turns the TCP_QUICKACK workaround off, forcePty holds a pty session open
	// as on systems without TCP_QUICKACK (both for tests and measurements).
	disableQuickAck bool
	forcePty        bool
}

func (o Options) keepAlive() time.Duration {
	switch {
	case o.KeepAlive == 0:
		return DefaultKeepAlive
	case o.KeepAlive < 0:
		return 0
	}
	return o.KeepAlive
}

func (o Options) dialTimeout() time.Duration {
	if o.DialTimeout <= 0 {
		return DefaultDialTimeout
	}
	return o.DialTimeout
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Resolved is what a Target means once the ssh config is applied.
type Resolved struct {
	// Alias is the host as written in the target (what Host patterns in the ssh config match).
	Alias string
	// HostName is the host to connect to (the config's HostName, else Alias).
	HostName string
	// Port to connect to.
	Port int
	// User to log in as.
	User string
	// IdentityFiles are the key files to try, in order, after the agent's keys.
	IdentityFiles []string
	// DefaultIdentities is true when IdentityFiles are the defaults (missing ones are not an error).
	DefaultIdentities bool
	// KnownHostsFiles to read host keys from; KnownHostsWrite is where AcceptNew appends.
	KnownHostsFiles []string
	KnownHostsWrite string
	// HashKnownHosts makes AcceptNew write hashed host names.
	HashKnownHosts bool
	// AcceptNew: Options.AcceptNew or "StrictHostKeyChecking accept-new" in the ssh config.
	AcceptNew bool
	// AgentSocket is the agent to ask for keys ("" for none).
	AgentSocket string
}

// Addr is host:port to dial, and the name host keys are checked under.
func (r Resolved) Addr() string { return net.JoinHostPort(r.HostName, strconv.Itoa(r.Port)) }

// Resolve applies the ssh config files and defaults to a target.
func Resolve(t Target, o Options) (Resolved, error) {
	home, _ := os.UserHomeDir()
	cfgs, err := loadConfigs(o, home)
	if err != nil {
		return Resolved{}, err
	}
	get := func(key string) string {
		for _, c := range cfgs {
			if v, err := c.cfg.Get(t.Host, key); err == nil && v != "" {
				return v
			}
		}
		return ""
	}
	getAll := func(key string) []string {
		var out []string
		for _, c := range cfgs {
			if v, err := c.cfg.GetAll(t.Host, key); err == nil {
				out = append(out, v...)
			}
		}
		return out
	}

	r := Resolved{Alias: t.Host, HostName: t.Host, Port: t.Port, User: t.User}
	if hn := get("HostName"); hn != "" {
		r.HostName = expandTokens(hn, tokens{"%h": t.Host, "%%": "%"})
	}
	if r.Port == 0 {
		if p := get("Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return Resolved{}, fmt.Errorf("ssh config: Port %q for host %s is not a number between 1 and 65535; fix it in %s", p, t.Host, configNames(cfgs))
			}
			r.Port = n
		} else {
			r.Port = 22
		}
	}
	local := localUser()
	if r.User == "" {
		r.User = get("User")
	}
	if r.User == "" {
		r.User = local
	}
	if r.User == "" {
		return Resolved{}, fmt.Errorf("cannot tell which user to log in to %s as: write ssh://user@%s or set User in ~/.ssh/config", t.Host, t.Host)
	}
	tok := tokens{
		"%h": r.HostName, "%n": t.Host, "%p": strconv.Itoa(r.Port), "%r": r.User,
		"%u": local, "%d": home, "%%": "%",
	}
	expand := func(p string) string { return expandPath(p, home, tok) }

	for _, f := range o.IdentityFiles {
		r.IdentityFiles = append(r.IdentityFiles, expand(f))
	}
	for _, f := range getAll("IdentityFile") {
		r.IdentityFiles = append(r.IdentityFiles, expand(f))
	}
	if len(r.IdentityFiles) == 0 {
		r.DefaultIdentities = true
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			r.IdentityFiles = append(r.IdentityFiles, filepath.Join(home, ".ssh", n))
		}
	}
	r.IdentityFiles = dedupe(r.IdentityFiles)

	switch {
	case len(o.KnownHostsFiles) > 0:
		for _, f := range o.KnownHostsFiles {
			r.KnownHostsFiles = append(r.KnownHostsFiles, expand(f))
		}
		r.KnownHostsWrite = r.KnownHostsFiles[0]
	default:
		user := strings.Fields(get("UserKnownHostsFile"))
		if len(user) == 0 {
			user = []string{"~/.ssh/known_hosts", "~/.ssh/known_hosts2"}
		}
		global := strings.Fields(get("GlobalKnownHostsFile"))
		if len(global) == 0 {
			global = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
		}
		for _, f := range append(user, global...) {
			if f == None {
				continue
			}
			r.KnownHostsFiles = append(r.KnownHostsFiles, expand(f))
		}
		if user[0] != None {
			r.KnownHostsWrite = expand(user[0])
		}
	}
	r.KnownHostsFiles = dedupe(r.KnownHostsFiles)
	r.HashKnownHosts = strings.EqualFold(get("HashKnownHosts"), "yes")
	r.AcceptNew = o.AcceptNew || strings.EqualFold(get("StrictHostKeyChecking"), "accept-new")

	switch sock := o.AgentSocket; {
	case sock == None:
	case sock != "":
		r.AgentSocket = expand(sock)
	default:
		ia := get("IdentityAgent")
		switch {
		case ia == None:
		case ia == "" || ia == "SSH_AUTH_SOCK":
			r.AgentSocket = os.Getenv("SSH_AUTH_SOCK")
		case strings.HasPrefix(ia, "$"):
			r.AgentSocket = os.Getenv(strings.Trim(ia[1:], "{}"))
		default:
			r.AgentSocket = expand(ia)
		}
	}
	return r, nil
}

type namedConfig struct {
	path string
	cfg  *sshconfig.Config
}

func configNames(cfgs []namedConfig) string {
	var n []string
	for _, c := range cfgs {
		n = append(n, c.path)
	}
	if len(n) == 0 {
		return "your ssh config"
	}
	return strings.Join(n, " or ")
}

// loadConfigs parses the user's and the system's ssh config. A missing file is fine; a file that
// does not parse is an error for the user's config (we could otherwise dial the wrong host) and is
// ignored (with a warning) for the system's.
func loadConfigs(o Options, home string) ([]namedConfig, error) {
	var out []namedConfig
	userPath := o.ConfigFile
	if userPath == "" {
		userPath = filepath.Join(home, ".ssh", "config")
	}
	sysPath := o.SystemConfigFile
	if sysPath == "" {
		sysPath = "/etc/ssh/ssh_config"
	}
	for i, p := range []string{userPath, sysPath} {
		if p == None {
			continue
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) && (i == 1 || o.ConfigFile == "") {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read ssh config %s: %v; fix the file's permissions or pass another config file", p, err)
		}
		cfg, err := sshconfig.DecodeBytes(b)
		if err != nil {
			if i == 1 {
				o.logger().Warn("ignoring the system ssh config: it does not parse", "path", p, "err", err)
				continue
			}
			return nil, fmt.Errorf("parse ssh config %s: %v; fix the file (ssh -G <host> shows what OpenSSH makes of it)", p, err)
		}
		out = append(out, namedConfig{path: p, cfg: cfg})
	}
	return out, nil
}

type tokens map[string]string

func expandTokens(s string, tok tokens) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+1 < len(s) {
			if v, ok := tok[s[i:i+2]]; ok {
				b.WriteString(v)
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func expandPath(p, home string, tok tokens) string {
	p = expandTokens(p, tok)
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}

func localUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
