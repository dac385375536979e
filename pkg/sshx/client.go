package sshx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrClosed is returned by a Client's methods after Close.
var ErrClosed = errors.New("ssh client is closed; open a new one")

// Client opens channels through one SSH connection to a target, shared by every caller and safe
// for concurrent use. It connects on first use; a connection that drops (server gone, link cut,
// keepalive unanswered) is re-established by the next DialContext, once for all concurrent callers.
type Client struct {
	target Target
	*link       // unexported: its methods are not part of the API
	pooled bool // owned by a Pool: Close is the pool's job
}

// link is the shared connection state behind one or more Clients.
type link struct {
	key  string
	opts Options
	log  *slog.Logger
	// resolveTarget is the target the connection is made for (its socket is irrelevant).
	resolveTarget Target

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	cur      *conn
	inflight *attempt
	closed   bool
	connects int
}

// attempt is one connect shared by the callers that wait for it.
type attempt struct {
	done chan struct{}
	conn *conn
	err  error
}

// conn is one established SSH connection.
type conn struct {
	id     int
	client *ssh.Client
	addr   string

	dead     chan struct{} // closed once the connection is gone
	deadOnce sync.Once
	deadErr  error

	probe chan struct{} // asks the keepalive loop to check the connection now
}

// New returns a Client for target with a connection of its own; it does not connect yet (see
// Connect). Use a Pool to share one connection per server across the process.
func New(target Target, opts Options) *Client {
	return &Client{target: target, link: newLink(target, opts)}
}

func newLink(target Target, opts Options) *link {
	ctx, cancel := context.WithCancel(context.Background())
	key := target.connKey()
	return &link{
		key:           key,
		opts:          opts,
		log:           opts.logger().With("ssh", strings.TrimSuffix(key, "/")),
		resolveTarget: target,
		ctx:           ctx,
		cancel:        cancel,
	}
}

// Dial parses target, connects and returns a Client with a connection of its own.
func Dial(ctx context.Context, target string, opts Options) (*Client, error) {
	t, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	c := New(t, opts)
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Target is the target this client was made for.
func (c *Client) Target() Target { return c.target }

// Connect makes sure the connection is up, connecting if needed; it surfaces host key and
// authentication errors before the first DialContext.
func (c *Client) Connect(ctx context.Context) error {
	_, err := c.get(ctx)
	return err
}

// SSHClient returns the underlying *ssh.Client (connecting if needed), for sessions. It is replaced
// after a reconnect: do not keep it.
func (c *Client) SSHClient(ctx context.Context) (*ssh.Client, error) {
	cn, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	return cn.client, nil
}

// Connects counts the SSH connections established so far (1, plus 1 per reconnect).
func (c *Client) Connects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connects
}

// DialDocker opens a channel to the target's Docker socket.
func (c *Client) DialDocker(ctx context.Context) (net.Conn, error) {
	return c.DialContext(ctx, "unix", c.target.Socket)
}

// DialContext opens a channel from the SSH server to addr: network "unix" for a socket path on
// the server, "tcp" (or tcp4, tcp6) for host:port as the server resolves it. The channel is a
// net.Conn; its deadlines are supported, and an expired deadline closes it. Its signature fits
// http.Transport.DialContext and the Docker client's dialer.
//
// If the connection turns out to be dead it is re-established and the dial is tried once more.
// The context bounds the connect and the channel open, not the returned connection.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.dial(ctx, network, addr)
}

func (l *link) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "unix", "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("ssh: cannot dial network %q: only unix (a socket on the server) and tcp are supported", network)
	}
	var lastErr error
	for try := 0; try < 2; try++ {
		cn, err := l.get(ctx)
		if err != nil {
			return nil, err
		}
		ch, err := cn.client.DialContext(ctx, network, addr)
		if err == nil {
			return newChanConn(ch), nil
		}
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			// The server is there and answered: it could not reach addr.
			return nil, fmt.Errorf("ssh server %s could not open %s %s: %s (%s)", cn.addr, network, addr, oce.Message, oce.Reason)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			// No answer in time: maybe the link is gone. Have the keepalive loop check now, so the
			// next caller finds a fresh connection instead of waiting again.
			cn.kick()
			return nil, fmt.Errorf("ssh %s: open %s %s: %w (the server did not answer in time)", cn.addr, network, addr, ctxErr)
		}
		// Anything else comes from the connection itself (closed, EOF, ...). Make sure it is
		// dead (a live connection answers a keepalive) before reconnecting.
		if !cn.alive(l.replyTimeout()) {
			l.log.Info("ssh connection lost, reconnecting", "conn", cn.id, "err", err)
			lastErr = err
			continue
		}
		return nil, fmt.Errorf("ssh %s: open %s %s: %w", cn.addr, network, addr, err)
	}
	return nil, fmt.Errorf("ssh %s: connection lost twice while opening %s %s: %w; check the server and the network", l.key, network, addr, lastErr)
}

// Close closes the connection and stops its goroutines; channels still open are closed too. For a
// Client from a Pool it does nothing: Pool.Close closes the shared connection.
func (c *Client) Close() error {
	if c.pooled {
		return nil
	}
	return c.link.close()
}

func (c *link) close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	cur := c.cur
	c.cur = nil
	c.mu.Unlock()
	c.cancel()
	if cur != nil {
		cur.kill(ErrClosed)
	}
	c.wg.Wait()
	return nil
}

func (c *link) replyTimeout() time.Duration {
	if ka := c.opts.keepAlive(); ka > 0 {
		return ka
	}
	return c.opts.dialTimeout()
}

// get returns the live connection, connecting (once for all concurrent callers) if there is none.
func (c *link) get(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if cn := c.cur; cn != nil {
			select {
			case <-cn.dead:
				c.cur = nil
			default:
				c.mu.Unlock()
				return cn, nil
			}
		}
		a := c.inflight
		if a == nil {
			a = &attempt{done: make(chan struct{})}
			c.inflight = a
			c.wg.Add(1)
			go c.runAttempt(a)
		}
		c.mu.Unlock()

		select {
		case <-a.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("ssh %s: connect: %w", c.key, ctx.Err())
		}
		if a.err != nil {
			return nil, a.err
		}
		// Loop: the new connection may already have died; normally it is returned at once.
	}
}

func (c *link) runAttempt(a *attempt) {
	defer c.wg.Done()
	cn, err := c.connect(c.ctx)
	c.mu.Lock()
	if err == nil && c.closed {
		cn.kill(ErrClosed)
		cn, err = nil, ErrClosed
	}
	if err == nil {
		c.connects++
		cn.id = c.connects
		c.cur = cn
	}
	c.inflight = nil
	a.conn, a.err = cn, err
	c.mu.Unlock()
	close(a.done)
	if err != nil {
		c.log.Debug("ssh connect failed", "err", err)
		return
	}
	c.log.Debug("ssh connected", "conn", cn.id, "addr", cn.addr)
	if !quickAckSupported || c.opts.forcePty {
		c.keepInteractive(cn)
	}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		err := cn.client.Wait()
		if err == nil {
			err = io.EOF
		}
		cn.markDead(err)
		c.log.Debug("ssh connection closed", "conn", cn.id, "err", cn.deadErr)
	}()
	go func() {
		defer c.wg.Done()
		c.keepalive(cn)
	}()
}

// connect dials, verifies the host key and authenticates.
func (c *link) connect(ctx context.Context) (*conn, error) {
	r, err := Resolve(c.resolveTarget, c.opts)
	if err != nil {
		return nil, err
	}
	log := c.log
	hk, err := loadHostKeys(r, log)
	if err != nil {
		return nil, err
	}
	ks := loadKeys(r, log)
	defer ks.close()

	timeout := c.opts.dialTimeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := r.Addr()
	d := net.Dialer{}
	tcp, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ssh: connect to %s: %v; check that the host is up and sshd listens on port %d", addr, err, r.Port)
	}
	if tc, ok := tcp.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	var nc net.Conn = tcp
	if !c.opts.disableQuickAck {
		nc = withQuickAck(tcp)
	}
	// The handshake has no context: bound it with a deadline, and with the context (Close).
	_ = tcp.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { tcp.Close() })

	var hostKeyErr error
	verify := hk.callback()
	cfg := &ssh.ClientConfig{
		User: r.User,
		Auth: ks.methods(),
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			err := verify(hostname, remote, key)
			hostKeyErr = err
			return err
		},
		HostKeyAlgorithms: hk.algorithms(addr),
		Timeout:           timeout,
		ClientVersion:     "SSH-2.0-rfenv",
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	stopped := stop()
	if err != nil {
		tcp.Close()
		switch {
		case c.ctx.Err() != nil:
			return nil, ErrClosed
		case hostKeyErr != nil:
			return nil, hostKeyErr
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, ks.authError(r, err)
		case !stopped || ctx.Err() != nil:
			return nil, fmt.Errorf("ssh: handshake with %s: %w (no answer within %s); check that port %d is an SSH server", addr, context.DeadlineExceeded, timeout, r.Port)
		case strings.Contains(err.Error(), "no common algorithm for host key"):
			return nil, fmt.Errorf("ssh: %s offers no host key of the type(s) recorded for it in known_hosts (%v): its host keys may have been replaced; confirm with the server's administrator and update known_hosts", addr, err)
		}
		return nil, fmt.Errorf("ssh: handshake with %s: %v", addr, err)
	}
	_ = tcp.SetDeadline(time.Time{})
	cl := ssh.NewClient(sc, chans, reqs)
	return &conn{
		client: cl,
		addr:   addr,
		dead:   make(chan struct{}),
		probe:  make(chan struct{}, 1),
	}, nil
}

// keepInteractive holds a session with a pty open (running cat, which prints nothing), for as
// long as the connection lives: sshd then sets TCP_NODELAY on its socket, which avoids the
// delayed-ACK stall where TCP_QUICKACK does not exist (see quickack_linux.go). Best effort: a
// server that refuses ptys or commands only costs latency.
func (c *link) keepInteractive(cn *conn) {
	sess, err := cn.client.NewSession()
	if err != nil {
		c.log.Debug("no pty session (latency workaround)", "err", err)
		return
	}
	if err := sess.RequestPty("dumb", 24, 80, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		sess.Close()
		c.log.Debug("pty refused (latency workaround)", "err", err)
		return
	}
	if err := sess.Start("cat"); err != nil {
		sess.Close()
		c.log.Debug("pty session refused (latency workaround)", "err", err)
		return
	}
	// The session ends with the connection; x/crypto copies its output (a login banner, if any)
	// to io.Discard.
}

// keepalive sends keepalive@openssh.com every interval (and when kicked); an unanswered one
// kills the connection.
func (c *link) keepalive(cn *conn) {
	interval := c.opts.keepAlive()
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-cn.dead:
			return
		case <-tick:
		case <-cn.probe:
		}
		if !cn.alive(c.replyTimeout()) {
			c.log.Info("ssh keepalive unanswered: connection dead", "conn", cn.id, "timeout", c.replyTimeout())
			return
		}
	}
}

func (cn *conn) kick() {
	select {
	case cn.probe <- struct{}{}:
	default:
	}
}

func (cn *conn) markDead(err error) {
	cn.deadOnce.Do(func() {
		cn.deadErr = err
		close(cn.dead)
	})
}

func (cn *conn) kill(err error) {
	cn.markDead(err)
	cn.client.Close()
}

// alive sends a keepalive and waits for any reply; no reply within timeout kills the connection.
func (cn *conn) alive(timeout time.Duration) bool {
	select {
	case <-cn.dead:
		return false
	default:
	}
	replied := make(chan error, 1)
	go func() {
		_, _, err := cn.client.SendRequest("keepalive@openssh.com", true, nil)
		replied <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-replied:
		if err != nil {
			cn.kill(fmt.Errorf("keepalive: %w", err))
			return false
		}
		return true
	case <-cn.dead:
		return false
	case <-t.C:
		cn.kill(fmt.Errorf("no reply to keepalive within %s", timeout))
		return false
	}
}

// chanConn is a channel as a net.Conn with deadlines: x/crypto's channels have none, so an expired
// deadline closes the channel, which unblocks the pending Read or Write with a timeout error.
type chanConn struct {
	net.Conn
	mu        sync.Mutex
	rd, wd    *time.Timer
	timedOut  atomic.Bool
	closeOnce sync.Once
}

func newChanConn(c net.Conn) *chanConn { return &chanConn{Conn: c} }

// errDeadline matches os.ErrDeadlineExceeded and is a net.Error whose Timeout() is true.
var errDeadline = fmt.Errorf("ssh channel: %w (deadline expired; the channel was closed)", os.ErrDeadlineExceeded)

func (c *chanConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.timedOut.Load() {
		return n, errDeadline
	}
	return n, err
}

func (c *chanConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && c.timedOut.Load() {
		return n, errDeadline
	}
	return n, err
}

func (c *chanConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		for _, t := range []*time.Timer{c.rd, c.wd} {
			if t != nil {
				t.Stop()
			}
		}
		c.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

func (c *chanConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *chanConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rd = c.arm(c.rd, t)
	return nil
}

func (c *chanConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wd = c.arm(c.wd, t)
	return nil
}

func (c *chanConn) arm(old *time.Timer, t time.Time) *time.Timer {
	if old != nil {
		old.Stop()
	}
	if t.IsZero() {
		return nil
	}
	return time.AfterFunc(time.Until(t), func() {
		c.timedOut.Store(true)
		c.Conn.Close()
	})
}
