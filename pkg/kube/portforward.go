package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/transport/spdy"
)

// portForwardProtocol is the subprotocol of the pods/portforward subresource.
const portForwardProtocol = "portforward.k8s.io"

type spdyClient struct {
	client   *http.Client
	upgrader spdy.Upgrader
}

func (c *Conn) spdyClient() (*spdyClient, error) {
	c.spdyOnce.Do(func() {
		rt, up, err := spdy.RoundTripperFor(c.Config)
		if err != nil {
			c.spdyErr = err
			return
		}
		c.spdy = &spdyClient{client: &http.Client{Transport: rt}, upgrader: up}
	})
	return c.spdy, c.spdyErr
}

// PodDialer opens connections to one pod's ports through the API server: one upgraded (SPDY)
// connection per pod, shared by all the dials, and a pair of streams (data and error) per dial, as
// `kubectl port-forward` does. It is a pool.ContextDialer.
type PodDialer struct {
	c   *Conn
	pod string

	mu     sync.Mutex
	sc     httpstream.Connection
	nextID atomic.Int64
	// gone is set once the pod is terminating or deleted: dials fail at once (so the pool fails
	// over before sending anything) while calls in flight finish during the pod's grace period.
	gone atomic.Bool
}

// NewPodDialer returns a dialer reaching pod through the API server.
func (c *Conn) NewPodDialer(pod string) *PodDialer { return &PodDialer{c: c, pod: pod} }

// MarkGone makes further dials fail: the pod is terminating or deleted.
func (d *PodDialer) MarkGone() { d.gone.Store(true) }

// Close closes the upgraded connection (and every stream on it).
func (d *PodDialer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sc != nil {
		err := d.sc.Close()
		d.sc = nil
		return err
	}
	return nil
}

func (d *PodDialer) connection(ctx context.Context) (httpstream.Connection, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sc != nil {
		select {
		case <-d.sc.CloseChan():
			d.sc = nil
		default:
			return d.sc, nil
		}
	}
	sc, err := d.c.spdyClient()
	if err != nil {
		return nil, err
	}
	u := d.c.core.rc.Post().Resource("pods").Namespace(d.c.Namespace).Name(d.pod).SubResource("portforward").URL()
	type result struct {
		conn httpstream.Connection
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		conn, _, err := spdy.NewDialer(sc.upgrader, sc.client, http.MethodPost, u).Dial(portForwardProtocol)
		ch <- result{conn, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("port-forward to pod %s through %s: %w", d.pod, d.c.Spec, r.err)
		}
		d.sc = r.conn
		return r.conn, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// DialContext opens a stream to the pod's port (the port of addr; its host is ignored).
func (d *PodDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.gone.Load() {
		return nil, fmt.Errorf("pod %s is terminating or gone", d.pod)
	}
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	conn, err := d.connection(ctx)
	if err != nil {
		return nil, err
	}
	id := strconv.FormatInt(d.nextID.Add(1), 10)
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, portStr)
	h.Set(corev1.PortForwardRequestIDHeader, id)
	errStream, err := conn.CreateStream(h)
	if err != nil {
		d.drop(conn)
		return nil, fmt.Errorf("port-forward to pod %s: %w", d.pod, err)
	}
	errStream.Close() // nothing is written to it
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(h)
	if err != nil {
		conn.RemoveStreams(errStream)
		d.drop(conn)
		return nil, fmt.Errorf("port-forward to pod %s: %w", d.pod, err)
	}
	sc := &streamConn{data: data, errStream: errStream, conn: conn, pod: d.pod, port: portStr, done: make(chan struct{})}
	go sc.watchErrors()
	return sc, nil
}

// drop forgets a broken upgraded connection so that the next dial makes a new one.
func (d *PodDialer) drop(conn httpstream.Connection) {
	d.mu.Lock()
	if d.sc == conn {
		d.sc = nil
	}
	d.mu.Unlock()
	conn.Close()
}

// streamConn is a port-forward data stream as a net.Conn. Deadlines are not supported (the HTTP
// transport uses the request's context instead).
type streamConn struct {
	data, errStream httpstream.Stream
	conn            httpstream.Connection
	pod, port       string
	remoteErr       atomic.Pointer[string]
	closeOnce       sync.Once
	done            chan struct{}
}

// watchErrors reads the error stream: the kubelet writes there when it cannot reach the pod's port.
func (s *streamConn) watchErrors() {
	msg, _ := io.ReadAll(s.errStream)
	if len(msg) > 0 {
		m := string(msg)
		s.remoteErr.Store(&m)
		s.data.Reset()
	}
}

func (s *streamConn) wrap(err error) error {
	if m := s.remoteErr.Load(); m != nil {
		return fmt.Errorf("port-forward to pod %s port %s: %s", s.pod, s.port, *m)
	}
	return err
}

func (s *streamConn) Read(p []byte) (int, error) {
	n, err := s.data.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = s.wrap(err)
	}
	return n, err
}

func (s *streamConn) Write(p []byte) (int, error) {
	n, err := s.data.Write(p)
	if err != nil {
		err = s.wrap(err)
	}
	return n, err
}

func (s *streamConn) Close() error {
	s.closeOnce.Do(func() {
		s.data.Reset()
		s.conn.RemoveStreams(s.data, s.errStream)
		close(s.done)
	})
	return nil
}

type pfAddr string

func (a pfAddr) Network() string { return "portforward" }
func (a pfAddr) String() string  { return string(a) }

func (s *streamConn) LocalAddr() net.Addr                { return pfAddr("rfenv") }
func (s *streamConn) RemoteAddr() net.Addr               { return pfAddr(s.pod + ":" + s.port) }
func (s *streamConn) SetDeadline(t time.Time) error      { return nil }
func (s *streamConn) SetReadDeadline(t time.Time) error  { return nil }
func (s *streamConn) SetWriteDeadline(t time.Time) error { return nil }
