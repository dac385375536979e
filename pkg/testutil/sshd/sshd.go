//go:build linux

package sshd

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sys/unix"
)

// Binary is the sshd executable used by Start.
const Binary = "/usr/sbin/sshd"

// Server is one running (or stopped) sshd.
type Server struct {
	// Addr is host:port to dial, for example 127.0.0.1:34567 or 10.200.3.2:22.
	Addr string
	// Host is the address sshd listens on.
	Host string
	// Port is the port sshd listens on.
	Port int
	// HostKey is the server's public host key (ed25519).
	HostKey ssh.PublicKey
	// HostKeys are all its host keys: HostKey, then an ECDSA one with WithECDSAHostKey.
	HostKeys []ssh.PublicKey
	// ClientKeyPath is an unencrypted OpenSSH private key (ed25519) that the server accepts.
	ClientKeyPath string
	// ClientKey is the signer for ClientKeyPath.
	ClientKey ssh.Signer
	// Dir is the server's directory (config, keys, pid file, authorized_keys).
	Dir string
	// Netns is set when the server runs in a network namespace of its own (StartInNetns).
	Netns *Netns

	t          testing.TB
	configPath string
	authPath   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *syncBuffer
}

type settings struct {
	extra []string
	keys  []ssh.PublicKey
	ecdsa bool
}

// Option changes how a server is started.
type Option func(*settings)

// WithConfig adds lines to the generated sshd_config (for example "MaxStartups 2").
func WithConfig(lines ...string) Option {
	return func(s *settings) { s.extra = append(s.extra, lines...) }
}

// WithECDSAHostKey gives the server a second host key, ECDSA P-256 (which x/crypto's clients
// prefer to ed25519 by default).
func WithECDSAHostKey() Option {
	return func(s *settings) { s.ecdsa = true }
}

// WithAuthorizedKeys authorises more public keys besides the generated client key.
func WithAuthorizedKeys(keys ...ssh.PublicKey) Option {
	return func(s *settings) { s.keys = append(s.keys, keys...) }
}

// Start runs sshd on 127.0.0.1 on a free port and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	port := freePort(t)
	s := prepare(t, "127.0.0.1", port, nil, opts)
	s.start()
	return s
}

func prepare(t testing.TB, host string, port int, ns *Netns, opts []Option) *Server {
	t.Helper()
	requireSSHD(t)
	var st settings
	for _, o := range opts {
		o(&st)
	}
	dir := t.TempDir()
	s := &Server{
		Addr:       net.JoinHostPort(host, strconv.Itoa(port)),
		Host:       host,
		Port:       port,
		Dir:        dir,
		Netns:      ns,
		t:          t,
		configPath: filepath.Join(dir, "sshd_config"),
		authPath:   filepath.Join(dir, "authorized_keys"),
		log:        &syncBuffer{},
	}
	hostKeyPath := filepath.Join(dir, "ssh_host_ed25519_key")
	s.HostKey = WriteKey(t, hostKeyPath, "")
	s.HostKeys = []ssh.PublicKey{s.HostKey}
	hostKeyLines := []string{"HostKey " + hostKeyPath}
	if st.ecdsa {
		p := filepath.Join(dir, "ssh_host_ecdsa_key")
		s.HostKeys = append(s.HostKeys, writeECDSAKey(t, p))
		hostKeyLines = append(hostKeyLines, "HostKey "+p)
	}
	s.ClientKeyPath = filepath.Join(dir, "id_ed25519")
	WriteKey(t, s.ClientKeyPath, "")
	signer, err := LoadSigner(s.ClientKeyPath)
	if err != nil {
		t.Fatalf("sshd: %v", err)
	}
	s.ClientKey = signer
	s.AuthorizeKey(signer.PublicKey())
	for _, k := range st.keys {
		s.AuthorizeKey(k)
	}
	cfg := append([]string{
		"ListenAddress " + s.Addr,
	}, hostKeyLines...)
	cfg = append(cfg,
		"PidFile "+filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile "+s.authPath,
		"UsePAM no",
		"StrictModes no",
		"PermitRootLogin yes",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AllowTcpForwarding yes",
		"AllowStreamLocalForwarding yes",
		"AllowAgentForwarding no",
		"X11Forwarding no",
		"PermitTTY yes",
		"UseDNS no",
		"PrintMotd no",
		"LogLevel VERBOSE",
		// Tests may connect many times at once; sshd's default (10:30:100) randomly drops
		// unauthenticated connections past 10. MaxSessions stays at its default (10): forwarded
		// channels are not sessions, and the 200-channel tests prove it.
		"MaxStartups 200",
		"Subsystem sftp internal-sftp",
	)
	cfg = append(cfg, st.extra...)
	if err := os.WriteFile(s.configPath, []byte(strings.Join(cfg, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("sshd: write config: %v", err)
	}
	// sshd refuses to start without its privilege separation directory; Debian's init script
	// normally creates it. It is left in place (harmless, and shared by concurrent test binaries).
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd: create /run/sshd (sshd's privilege separation directory): %v", err)
	}
	t.Cleanup(func() {
		s.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("sshd %s log:\n%s", s.Addr, s.log.String())
		}
	})
	return s
}

func requireSSHD(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("these tests run a real OpenSSH server and %s is missing (%v): apt-get install openssh-server", Binary, err)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshd: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs sshd and waits until it listens.
func (s *Server) start() {
	s.t.Helper()
	var args []string
	name := Binary
	if s.Netns != nil {
		name = "ip"
		args = []string{"netns", "exec", s.Netns.Name, Binary}
	}
	args = append(args, "-D", "-e", "-f", s.configPath)
	cmd := exec.Command(name, args...)
	// If the test binary dies without its cleanup (a timeout panic, a kill), so does sshd.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw, err := os.Pipe()
	if err != nil {
		s.t.Fatalf("sshd: pipe: %v", err)
	}
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		s.t.Fatalf("sshd: start %s: %v", Binary, err)
	}
	pw.Close()
	done := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			s.log.WriteString(line + "\n")
			if !signalled && strings.Contains(line, "Server listening on") {
				signalled = true
				close(ready)
			}
		}
		pr.Close()
	}()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd = cmd
	s.done = done
	s.mu.Unlock()

	select {
	case <-ready:
	case <-done:
		s.t.Fatalf("sshd exited before listening on %s:\n%s", s.Addr, s.log.String())
	case <-time.After(20 * time.Second):
		s.stop(syscall.SIGKILL)
		s.t.Fatalf("sshd did not listen on %s within 20s:\n%s", s.Addr, s.log.String())
	}
}

// Stop terminates sshd and every connection it serves (SIGTERM), and waits for the listener to exit.
func (s *Server) Stop() { s.stop(syscall.SIGTERM) }

// Kill kills sshd and every connection it serves with SIGKILL, as a crash or an OOM kill would;
// clients see their connection drop at once.
func (s *Server) Kill() { s.stop(syscall.SIGKILL) }

// Restart starts sshd again (after Stop or Kill) on the same address with the same host key.
// A running server is killed first.
func (s *Server) Restart() {
	s.t.Helper()
	s.stop(syscall.SIGKILL)
	s.start()
}

// Freeze stops (SIGSTOP) the processes serving the current connections, so the server goes silent
// without closing any socket, as a hung host would; the listener keeps accepting new connections.
// The returned function (also run at cleanup) resumes them; calling it again does nothing.
func (s *Server) Freeze() (thaw func()) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("sshd: Freeze: the server is not running")
	}
	pids := descendants(cmd.Process.Pid)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
	var once sync.Once
	thaw = func() {
		once.Do(func() {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		})
	}
	s.t.Cleanup(thaw)
	return thaw
}

// Running reports whether the listener process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	// Per-connection sshd processes call setsid(), so a process group signal misses them: find the
	// listener's descendants first (they are reparented once the listener dies), then signal all.
	pids := append([]int{cmd.Process.Pid}, descendants(cmd.Process.Pid)...)
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		<-done
	}
	// Wait for the connection processes too, so that "stopped" means the port and the sessions are
	// gone when this returns.
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids[1:] {
		waitExit(pid, time.Until(deadline))
	}
	s.mu.Lock()
	if s.cmd == cmd {
		s.cmd = nil
	}
	s.mu.Unlock()
}

// descendants lists the processes below pid (children, grandchildren, ...), read from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		children[pp] = append(children[pp], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// waitExit waits until process pid (not our child) has exited, at most timeout: a pidfd becomes
// readable when its process exits.
func waitExit(pid int, timeout time.Duration) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // already gone
	}
	defer unix.Close(fd)
	ms := int(timeout / time.Millisecond)
	if ms < 0 {
		ms = 0
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, ms)
		if err != unix.EINTR {
			return
		}
	}
}

// AuthorizeKey adds a public key to the server's authorized_keys (read by sshd at each login).
func (s *Server) AuthorizeKey(pub ssh.PublicKey) {
	s.t.Helper()
	f, err := os.OpenFile(s.authPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		s.t.Fatalf("sshd: open authorized_keys: %v", err)
	}
	defer f.Close()
	if _, err := f.Write(ssh.MarshalAuthorizedKey(pub)); err != nil {
		s.t.Fatalf("sshd: write authorized_keys: %v", err)
	}
}

// KnownHostsLine is the known_hosts line for this server (with [host]:port when the port is not 22).
func (s *Server) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey)
}

// WriteKnownHosts writes a known_hosts file holding this server's host key at path (0600) and
// returns path. An empty path writes a new file in a temporary directory.
func (s *Server) WriteKnownHosts(t testing.TB, path string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "known_hosts")
	}
	if err := os.WriteFile(path, []byte(s.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatalf("sshd: write known_hosts: %v", err)
	}
	return path
}

// Target is the ssh:// URL of this server for user root, with socket as path when not empty.
func (s *Server) Target(socket string) string {
	return "ssh://root@" + s.Addr + socket
}

// Log returns what sshd has written to stderr so far.
func (s *Server) Log() string { return s.log.String() }

// WaitLog waits until sshd's log contains sub; false if it does not within timeout.
func (s *Server) WaitLog(sub string, timeout time.Duration) bool { return s.log.wait(sub, timeout) }

// CutLink takes the host side of the namespace's veth pair down: packets to and from the server
// are dropped, as when a network link fails (connections hang rather than being reset).
// Only for servers started with StartInNetns.
func (s *Server) CutLink() {
	s.t.Helper()
	if s.Netns == nil {
		s.t.Fatalf("sshd: CutLink needs a server started with StartInNetns")
	}
	s.Netns.CutLink(s.t)
}

// RestoreLink brings the link taken down by CutLink back up.
func (s *Server) RestoreLink() {
	s.t.Helper()
	if s.Netns == nil {
		s.t.Fatalf("sshd: RestoreLink needs a server started with StartInNetns")
	}
	s.Netns.RestoreLink(s.t)
}

// WriteKey writes a new ed25519 private key in OpenSSH format at path (0600), encrypted with
// passphrase when it is not empty, and its public key at path+".pub". It returns the public key.
func WriteKey(t testing.TB, path, passphrase string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshd: generate key: %v", err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "rfenv-test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "rfenv-test", []byte(passphrase))
	}
	if err != nil {
		t.Fatalf("sshd: marshal key: %v", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("sshd: write key: %v", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatalf("sshd: public key: %v", err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		t.Fatalf("sshd: write public key: %v", err)
	}
	return sshPub
}

func writeECDSAKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("sshd: generate key: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "rfenv-test")
	if err != nil {
		t.Fatalf("sshd: marshal key: %v", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("sshd: write key: %v", err)
	}
	pub, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatalf("sshd: public key: %v", err)
	}
	return pub
}

// LoadSigner reads an unencrypted private key file.
func LoadSigner(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(b)
}

type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced at every write
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.WriteString(s)
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
}

// wait returns once the buffer contains sub, or false after timeout.
func (b *syncBuffer) wait(sub string, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		if strings.Contains(b.b.String(), sub) {
			b.mu.Unlock()
			return true
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
