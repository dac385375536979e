package serve

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
)

// SocketName is the default socket's file name inside RuntimeDir.
const SocketName = "serve.sock"

// TokenFileName is the default token file's name inside RuntimeDir (TCP listeners).
const TokenFileName = "serve.token"

// RuntimeDir is rfenv's private runtime directory: $XDG_RUNTIME_DIR/rfenv, or, when that is unset,
// rfenv-UID in the system's temporary directory. It is created 0700 and must belong to this user
// and be closed to others, since it holds the socket and the token file.
func RuntimeDir() (string, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	name := "rfenv"
	if base == "" || !filepath.IsAbs(base) {
		base, name = os.TempDir(), fmt.Sprintf("rfenv-%d", os.Getuid())
	}
	dir := filepath.Join(base, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", errs.Wrap(errs.Infra, err)
	}
	return dir, checkPrivateDir(dir)
}

// checkPrivateDir refuses a directory that another user owns or can enter: whoever can reach the
// socket can run anything the library can.
func checkPrivateDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return errs.Wrap(errs.Usage, err)
	}
	if !fi.IsDir() {
		return errs.New(errs.Usage, "%s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return errs.New(errs.Usage, "%s belongs to uid %d, not to this user (%d): choose another --socket", dir, st.Uid, os.Getuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return errs.New(errs.Usage, "%s is open to other users (mode %04o): the socket's directory must be 0700 (chmod 700 %s)", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// Listener is where the server listens, and what a client needs to reach it.
type Listener struct {
	net.Listener
	Network   string // "unix" or "tcp"
	Address   string // the socket's path, or host:port
	TokenFile string // TCP only: the 0600 file holding the bearer token
	Token     string // TCP only: never printed or logged
	remove    func()
}

// Close stops listening and removes the socket file or token file.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	if l.remove != nil {
		l.remove()
	}
	return err
}

// ListenUnix listens on a unix socket at path (default RuntimeDir/serve.sock), mode 0600 in a
// private directory. A socket file left by a dead server is replaced; one that still answers is a
// conflict.
func ListenUnix(path string) (*Listener, error) {
	if path == "" {
		dir, err := RuntimeDir()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(dir, SocketName)
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, errs.Wrap(errs.Usage, err)
	}
	if err := checkPrivateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(path); err == nil {
		c, derr := net.DialTimeout("unix", path, time.Second)
		if derr == nil {
			c.Close()
			return nil, errs.New(errs.Conflict, "another rfenv serve answers on %s: connect to it (RFENV_SERVE=unix://%s) or stop it first", path, path)
		}
		os.Remove(path)
	}
	// The umask makes the socket 0600 from the start: no window in which others could connect.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, errs.Wrap(errs.Infra, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	return &Listener{Listener: ln, Network: "unix", Address: path}, nil
}

// ListenTCP listens on addr (host:port, port 0 picks one) and writes a new random bearer token to
// tokenFile (default RuntimeDir/serve.token), mode 0600. The token file is removed on Close.
func ListenTCP(addr, tokenFile string) (*Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, errs.New(errs.Usage, "--listen %q: expected HOST:PORT such as 127.0.0.1:8765", addr)
	}
	if tokenFile == "" {
		dir, err := RuntimeDir()
		if err != nil {
			return nil, err
		}
		tokenFile = filepath.Join(dir, TokenFileName)
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	if err := writeSecret(tokenFile, token); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		os.Remove(tokenFile)
		return nil, errs.Wrap(errs.Infra, err)
	}
	return &Listener{
		Listener: ln, Network: "tcp", Address: ln.Addr().String(), TokenFile: tokenFile, Token: token,
		remove: func() { os.Remove(tokenFile) },
	}, nil
}

// writeSecret writes a 0600 file through a temporary file and a rename, so that no reader ever
// sees a partial token and the mode never passes through anything wider.
func writeSecret(path, secret string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".token-*")
	if err != nil {
		return errs.Wrap(errs.Usage, fmt.Errorf("token file: %w", err))
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return errs.Wrap(errs.Infra, err)
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		return errs.Wrap(errs.Infra, err)
	}
	if err := f.Close(); err != nil {
		return errs.Wrap(errs.Infra, err)
	}
	return errs.Wrap(errs.Infra, os.Rename(f.Name(), path))
}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", errs.Wrap(errs.Infra, err)
	}
	return hex.EncodeToString(b), nil
}

// IsLoopback says whether a listen address stays on this machine (127.0.0.0/8, ::1, localhost).
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func validBearer(header, token string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// errClosed reports a listener closed by Shutdown as no error.
func errClosed(err error) error {
	if errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
