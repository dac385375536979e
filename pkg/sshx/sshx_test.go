//go:build linux

package sshx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/rfenv/rfenv/pkg/testutil/sshd"
)

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// checkTunnelHTTP GETs from a local HTTP server through c.
func checkTunnelHTTP(t *testing.T, c *Client) {
	t.Helper()
	url := "http://" + httpServer(t, nil) + "/"
	got, err := get(ctxTimeout(t, testDialTimeout), tunnelHTTP(c, 1), url)
	if err != nil || got != "ok" {
		t.Fatalf("GET through the tunnel: %q, %v", got, err)
	}
}

func TestKeyFileAuthAndTCPTunnel(t *testing.T) {
	s := sshd.Start(t)
	c := connect(t, s, hermetic(t, s))
	checkTunnelHTTP(t, c)
	if n := c.Connects(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

func TestDockerSocketTunnel(t *testing.T) {
	s := sshd.Start(t)
	c := New(mustTarget(t, s.Target("/var/run/docker.sock")), hermetic(t, s))
	defer c.Close()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return c.DialDocker(ctx) },
	}}
	got, err := get(ctxTimeout(t, testDialTimeout), hc, "http://docker/_ping")
	if err != nil || got != "OK" {
		t.Fatalf("GET /_ping on the Docker socket through ssh: %q, %v", got, err)
	}
}

func TestRefusedChannelKeepsConnection(t *testing.T) {
	s := sshd.Start(t)
	c := connect(t, s, hermetic(t, s))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = c.DialContext(ctxTimeout(t, testDialTimeout), "tcp", addr)
	if err == nil || !strings.Contains(err.Error(), "could not open tcp "+addr) {
		t.Fatalf("dial to a closed port: %v", err)
	}
	_, err = c.DialContext(ctxTimeout(t, testDialTimeout), "unix", "/nonexistent.sock")
	if err == nil || !strings.Contains(err.Error(), "could not open unix") {
		t.Fatalf("dial to a missing socket: %v", err)
	}
	checkTunnelHTTP(t, c)
	if n := c.Connects(); n != 1 {
		t.Fatalf("a refused channel cost the connection: %d connects", n)
	}
	if _, err := c.DialContext(context.Background(), "udp", addr); err == nil {
		t.Fatal("udp accepted")
	}
}

func TestChannelDeadline(t *testing.T) {
	s := sshd.Start(t)
	c := connect(t, s, hermetic(t, s))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // accept and never answer
		}
	}()
	conn, err := c.DialContext(ctxTimeout(t, testDialTimeout), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("deadline took %v", d)
	}
}

func TestAgentAuth(t *testing.T) {
	s := sshd.Start(t)
	home := t.TempDir() // no default key files there
	t.Setenv("HOME", home)
	startAgent(t)

	// A key only the agent has (added with the real ssh-add).
	keyDir := t.TempDir()
	keyPath := filepath.Join(keyDir, "agent_key")
	pub := sshd.WriteKey(t, keyPath, "")
	s.AuthorizeKey(pub)
	if out, err := exec.Command("ssh-add", keyPath).CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	os.Remove(keyPath) // only the agent can sign now

	o := hermetic(t, s)
	o.IdentityFiles = nil
	o.AgentSocket = "" // from $SSH_AUTH_SOCK, set by startAgent
	c := connect(t, s, o)
	checkTunnelHTTP(t, c)

	// The agent socket unreachable: a clear error that names what was tried.
	o.AgentSocket = filepath.Join(keyDir, "missing.sock")
	_, err := Dial(ctxTimeout(t, testDialTimeout), s.Target(""), o)
	if err == nil || !strings.Contains(err.Error(), "no ssh key") || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("without keys: %v", err)
	}
}

// startAgent runs the real ssh-agent and points SSH_AUTH_SOCK at it.
func startAgent(t *testing.T) string {
	sock := sshd.StartAgent(t)
	t.Setenv("SSH_AUTH_SOCK", sock)
	return sock
}

func TestEncryptedKey(t *testing.T) {
	s := sshd.Start(t)
	t.Setenv("HOME", t.TempDir())
	dir := t.TempDir()
	enc := filepath.Join(dir, "id_enc")
	s.AuthorizeKey(sshd.WriteKey(t, enc, "secret"))

	// No agent: the clear error.
	o := hermetic(t, s)
	o.IdentityFiles = []string{enc}
	_, err := Dial(ctxTimeout(t, testDialTimeout), s.Target(""), o)
	var ek *EncryptedKeyError
	if !errors.As(err, &ek) || ek.Path != enc {
		t.Fatalf("encrypted key without agent: %v", err)
	}
	want := fmt.Sprintf("key %s is encrypted; add it to ssh-agent (ssh-add %s) and make sure SSH_AUTH_SOCK is set", enc, enc)
	if err.Error() != want {
		t.Fatalf("error %q\nwant    %q", err, want)
	}

	// Another key works: no error about the encrypted one.
	o.IdentityFiles = []string{enc, s.ClientKeyPath}
	c := connect(t, s, o)
	checkTunnelHTTP(t, c)

	// The agent holds the encrypted key: it is used, and the file is not an error.
	sock := startAgent(t)
	raw, err := os.ReadFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ssh.ParseRawPrivateKeyWithPassphrase(raw, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	ac, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	if err := agent.NewClient(ac).Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	o.IdentityFiles = []string{enc}
	o.AgentSocket = sock
	c2 := connect(t, s, o)
	checkTunnelHTTP(t, c2)
}

func TestAuthRefused(t *testing.T) {
	s := sshd.Start(t)
	other := filepath.Join(t.TempDir(), "id_other")
	sshd.WriteKey(t, other, "")
	o := hermetic(t, s)
	o.IdentityFiles = []string{other}
	_, err := Dial(ctxTimeout(t, testDialTimeout), s.Target(""), o)
	if err == nil || !strings.Contains(err.Error(), "refused every key for user root") || !strings.Contains(err.Error(), other) {
		t.Fatalf("unauthorised key: %v", err)
	}
}

func TestSSHConfigAlias(t *testing.T) {
	s := sshd.Start(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USER", "nobody-here")
	sshDir := filepath.Join(home, ".ssh")
	os.MkdirAll(sshDir, 0o700)
	kh := s.WriteKnownHosts(t, filepath.Join(sshDir, "kh_test"))
	writeFile(t, sshDir, "config", fmt.Sprintf(`Host myalias
    HostName 127.0.0.1
    Port %d
    User root
    IdentityFile %s
    UserKnownHostsFile %s
`, s.Port, s.ClientKeyPath, kh))

	// The default config path (~/.ssh/config), resolved from HOME.
	c := New(mustTarget(t, "ssh://myalias"), Options{SystemConfigFile: None, AgentSocket: None, Logger: testLogger(t), DialTimeout: testDialTimeout})
	defer c.Close()
	checkTunnelHTTP(t, c)

	// And an explicit config path.
	moved := writeFile(t, t.TempDir(), "cfg", fmt.Sprintf("Host other\n HostName 127.0.0.1\n Port %d\n User root\n IdentityFile %s\n UserKnownHostsFile %s\n", s.Port, s.ClientKeyPath, kh))
	c2 := New(mustTarget(t, "ssh://other"), Options{ConfigFile: moved, SystemConfigFile: None, AgentSocket: None, DialTimeout: testDialTimeout})
	defer c2.Close()
	checkTunnelHTTP(t, c2)
}

func TestUnknownHostKey(t *testing.T) {
	s := sshd.Start(t)
	o := hermetic(t, s)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, filepath.Dir(kh), "known_hosts", "# nothing yet\n")
	o.KnownHostsFiles = []string{kh}
	_, err := Dial(ctxTimeout(t, testDialTimeout), s.Target(""), o)
	var hke *HostKeyError
	if !errors.As(err, &hke) {
		t.Fatalf("unknown host key: %v", err)
	}
	host := fmt.Sprintf("[127.0.0.1]:%d", s.Port)
	fp := ssh.FingerprintSHA256(s.HostKey)
	if hke.Changed || hke.Host != host || hke.Fingerprint != fp || hke.Line != s.KnownHostsLine() || hke.File != kh {
		t.Fatalf("HostKeyError = %+v", hke)
	}
	for _, want := range []string{host, fp, s.KnownHostsLine(), kh, "--ssh-accept-new"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	// Appending the line the error gives fixes it.
	f, _ := os.OpenFile(kh, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(hke.Line + "\n")
	f.Close()
	c := connect(t, s, o)
	checkTunnelHTTP(t, c)

	// A known_hosts file that does not exist means every key is unknown.
	o.KnownHostsFiles = []string{filepath.Join(t.TempDir(), "missing")}
	if _, err := Dial(ctxTimeout(t, testDialTimeout), s.Target(""), o); !errors.As(err, &hke) || hke.Changed {
		t.Fatalf("missing known_hosts: %v", err)
	}
}

func TestChangedHostKey(t *testing.T) {
	s := sshd.Start(t)
	dir := t.TempDir()
	otherKey := sshd.WriteKey(t, filepath.Join(dir, "impostor"), "")
	kh := writeFile(t, dir, "known_hosts", "# first line\nexample.org "+string(ssh.MarshalAuthorizedKey(otherKey))+
		knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, otherKey)+"\n")
	for _, acceptNew := range []bool{false, true} {
		o := hermetic(t, s)
		o.KnownHostsFiles = []string{kh}
		o.AcceptNew = acceptNew // never applies to a changed key
		_, err := Dial(ctxTimeout(t, testDialTimeout), s.Target(""), o)
		var hke *HostKeyError
		if !errors.As(err, &hke) || !hke.Changed {
			t.Fatalf("changed host key (accept-new %v): %v", acceptNew, err)
		}
		if hke.KnownFile != kh || hke.KnownLine != 3 || hke.KnownFingerprint != ssh.FingerprintSHA256(otherKey) {
			t.Fatalf("HostKeyError = %+v", hke)
		}
		msg := err.Error()
		for _, want := range []string{"CHANGED", fmt.Sprintf("%s:3", kh), ssh.FingerprintSHA256(s.HostKey), "man-in-the-middle"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error does not mention %q:\n%s", want, msg)
			}
		}
		if strings.Contains(msg, "accept-new") {
			t.Errorf("a changed key's error offers accept-new:\n%s", msg)
		}
	}
	b, _ := os.ReadFile(kh)
	if strings.Count(string(b), "\n") != 3 {
		t.Fatalf("known_hosts was modified:\n%s", b)
	}
}

func TestAcceptNew(t *testing.T) {
	s := sshd.Start(t)
	for _, hashed := range []bool{false, true} {
		t.Run(fmt.Sprintf("hashed=%v", hashed), func(t *testing.T) {
			dir := t.TempDir()
			kh := filepath.Join(dir, "sub", "known_hosts") // the directory is created too
			o := hermetic(t, s)
			o.KnownHostsFiles = []string{kh}
			o.AcceptNew = true
			if hashed {
				o.ConfigFile = writeFile(t, dir, "config", "Host *\n  HashKnownHosts yes\n")
			}
			c := connect(t, s, o)
			checkTunnelHTTP(t, c)
			b, err := os.ReadFile(kh)
			if err != nil {
				t.Fatal(err)
			}
			line := strings.TrimSpace(string(b))
			if hashed {
				if !strings.HasPrefix(line, "|1|") || !strings.HasSuffix(line, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey)))) {
					t.Fatalf("known_hosts = %q", b)
				}
			} else if line != s.KnownHostsLine() {
				t.Fatalf("known_hosts = %q, want %q", b, s.KnownHostsLine())
			}
			// Without accept-new, the recorded key is trusted.
			o.AcceptNew = false
			c2 := connect(t, s, o)
			checkTunnelHTTP(t, c2)
			// Concurrent first connections append once.
			os.Remove(kh)
			o.AcceptNew = true
			var wg sync.WaitGroup
			for range 5 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := Dial(ctxTimeout(t, testDialTimeout), s.Target(""), o)
					if err != nil {
						t.Error(err)
						return
					}
					c.Close()
				}()
			}
			wg.Wait()
			b, _ = os.ReadFile(kh)
			if n := strings.Count(string(b), "\n"); n != 1 {
				t.Fatalf("%d lines after concurrent accept-new:\n%s", n, b)
			}
		})
	}
}

func TestHostKeyAlgorithmOrder(t *testing.T) {
	// The server has ECDSA and ed25519 keys; x/crypto prefers ECDSA, but only ed25519 is recorded.
	s := sshd.Start(t, sshd.WithECDSAHostKey())
	c := connect(t, s, hermetic(t, s))
	checkTunnelHTTP(t, c)

	// With only the ECDSA key recorded, that is the one negotiated.
	o := hermetic(t, s)
	o.KnownHostsFiles = []string{writeFile(t, t.TempDir(), "kh", knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKeys[1])+"\n")}
	c2 := connect(t, s, o)
	checkTunnelHTTP(t, c2)
}

func TestReconnectAfterKill(t *testing.T) {
	s := sshd.Start(t)
	c := connect(t, s, hermetic(t, s))
	url := "http://" + httpServer(t, nil) + "/"
	hc := tunnelHTTP(c, 4)
	if _, err := get(ctxTimeout(t, testDialTimeout), hc, url); err != nil {
		t.Fatal(err)
	}
	// A channel open while sshd dies fails, and so does a dial while it is down.
	open, err := c.DialContext(ctxTimeout(t, testDialTimeout), "tcp", strings.TrimPrefix(url[:len(url)-1], "http://"))
	if err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Fatal("a channel survived sshd's death")
	}
	_, err = c.DialContext(ctxTimeout(t, testDialTimeout), "tcp", "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("dial with sshd down: %v", err)
	}
	s.Restart()
	if got, err := get(ctxTimeout(t, testDialTimeout), hc, url); err != nil || got != "ok" {
		t.Fatalf("after restart: %q, %v", got, err)
	}
	if n := c.Connects(); n != 2 {
		t.Fatalf("%d connects, want 2", n)
	}
	// Killed and restarted while idle: the next dial finds out and reconnects.
	s.Kill()
	s.Restart()
	if got, err := get(ctxTimeout(t, testDialTimeout), hc, url); err != nil || got != "ok" {
		t.Fatalf("after second restart: %q, %v", got, err)
	}
	if n := c.Connects(); n != 3 {
		t.Fatalf("%d connects, want 3", n)
	}
}

// barrierServer answers "ok" to each request only once n requests are in flight together.
func barrierServer(t *testing.T, n int) (url string, reset func()) {
	var mu sync.Mutex
	var arrived int
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		rel := release
		if arrived == n {
			close(release)
		}
		mu.Unlock()
		select {
		case <-rel:
			io.WriteString(w, "ok")
		case <-time.After(30 * time.Second):
			http.Error(w, "not all requests arrived", 500)
		}
	})
	return "http://" + httpServer(t, h) + "/", func() {
		mu.Lock()
		arrived = 0
		release = make(chan struct{})
		mu.Unlock()
	}
}

func concurrentGets(t *testing.T, hc *http.Client, url string, n int) {
	t.Helper()
	ctx := ctxTimeout(t, 60*time.Second)
	var failed atomic.Int32
	var wg sync.WaitGroup
	var firstErr sync.Once
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := get(ctx, hc, url)
			if err != nil || got != "ok" {
				failed.Add(1)
				firstErr.Do(func() { t.Errorf("GET: %q, %v", got, err) })
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d concurrent calls failed", f, n)
	}
}

func TestConcurrent200(t *testing.T) {
	const n = 200
	s := sshd.Start(t)
	c := connect(t, s, hermetic(t, s))
	url, reset := barrierServer(t, n)
	hc := tunnelHTTP(c, n)
	concurrentGets(t, hc, url, n) // 200 channels open at once on one connection

	// Again right after sshd died and came back: 200 callers find the connection dead, one
	// reconnect serves them all.
	s.Kill()
	s.Restart()
	reset()
	concurrentGets(t, hc, url, n)
	if got := c.Connects(); got != 2 {
		t.Fatalf("%d connects, want 2", got)
	}
}

func TestCloseAndPool(t *testing.T) {
	s := sshd.Start(t)
	p := NewPool(hermetic(t, s))
	a, err := p.Get(s.Target(""))
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Get(s.Target("/run/other.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if a.link != b.link || b.Target().Socket != "/run/other.sock" || a.Target().Socket != DefaultSocket {
		t.Fatal("targets that differ only by socket do not share the connection")
	}
	checkTunnelHTTP(t, a)
	checkTunnelHTTP(t, b)
	b.Close() // no-op for pooled clients
	checkTunnelHTTP(t, a)
	if a.Connects() != 1 {
		t.Fatalf("%d connects", a.Connects())
	}
	if _, err := p.Get("http://x"); err == nil {
		t.Fatal("bad target accepted")
	}
	p.Close()
	if _, err := a.DialContext(context.Background(), "tcp", "127.0.0.1:1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("dial after Pool.Close: %v", err)
	}
	if _, err := p.Get(s.Target("")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

func TestNetnsCutLink(t *testing.T) {
	s := sshd.StartInNetns(t)
	o := hermetic(t, s)
	o.KeepAlive = 300 * time.Millisecond
	o.DialTimeout = 2 * time.Second
	c := New(mustTarget(t, s.Target("")), o)
	defer c.Close()
	ping := func(d time.Duration) (string, error) {
		hc := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return c.DialDocker(ctx) },
		}}
		defer hc.CloseIdleConnections()
		return get(ctxTimeout(t, d), hc, "http://docker/_ping")
	}
	if got, err := ping(10 * time.Second); err != nil || got != "OK" {
		t.Fatalf("Docker /_ping through the namespace's sshd: %q, %v", got, err)
	}

	s.CutLink()
	dead := currentConn(t, c).dead
	if _, err := ping(time.Second); err == nil {
		t.Fatal("the tunnel worked with the link cut")
	}
	select {
	case <-dead: // the keepalive noticed
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not declared dead 10s after the link was cut")
	}
	_, err := c.DialContext(ctxTimeout(t, 5*time.Second), "unix", DefaultSocket)
	if err == nil {
		t.Fatal("dial succeeded with the link cut")
	}
	t.Logf("with the link cut: %v", err)

	s.RestoreLink()
	if got, err := ping(10 * time.Second); err != nil || got != "OK" {
		t.Fatalf("after RestoreLink: %q, %v", got, err)
	}
	if n := c.Connects(); n != 2 {
		t.Fatalf("%d connects, want 2", n)
	}
}

func currentConn(t *testing.T, c *Client) *conn {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		t.Fatal("not connected")
	}
	return c.cur
}

func TestKeepaliveDetectsDeadServer(t *testing.T) {
	// SIGSTOP-ing the connection's sshd processes makes the server silent without closing the
	// socket: only the keepalive can tell.
	s := sshd.Start(t)
	o := hermetic(t, s)
	o.KeepAlive = 200 * time.Millisecond
	c := connect(t, s, o)
	cn := currentConn(t, c)
	stopped := s.Freeze()
	defer stopped()
	select {
	case <-cn.dead:
	case <-time.After(10 * time.Second):
		t.Fatal("a silent server was not noticed")
	}
	if !strings.Contains(cn.deadErr.Error(), "keepalive") {
		t.Fatalf("dead because: %v", cn.deadErr)
	}
	stopped()
	checkTunnelHTTP(t, c)
	if c.Connects() != 2 {
		t.Fatalf("%d connects", c.Connects())
	}
}

func TestPtyWorkaround(t *testing.T) {
	// What systems without TCP_QUICKACK use: a pty session held open (sshd then sets TCP_NODELAY).
	s := sshd.Start(t)
	o := hermetic(t, s)
	o.disableQuickAck = true
	o.forcePty = true
	c := connect(t, s, o)
	checkTunnelHTTP(t, c)
	if !s.WaitLog("Starting session: command on pts/", 10*time.Second) {
		t.Fatalf("no pty session in sshd's log:\n%s", s.Log())
	}
}
