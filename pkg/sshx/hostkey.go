package sshx

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/gofrs/flock"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError says that a server's host key is not in known_hosts (Changed false), or that it
// differs from the one recorded there (Changed true). Get it with errors.As.
type HostKeyError struct {
	// Host is the name the key is recorded under: host, or [host]:port when the port is not 22.
	Host string
	// KeyType and Fingerprint (SHA256:...) describe the key the server presented.
	KeyType     string
	Fingerprint string
	// Line is the known_hosts line that trusts the presented key.
	Line string
	// File is the known_hosts file to append Line to.
	File string
	// Changed is true when known_hosts holds a different key for Host: possibly an attack.
	Changed bool
	// KnownFile, KnownLine and KnownFingerprint locate the recorded key (when Changed).
	KnownFile        string
	KnownLine        int
	KnownFingerprint string
}

func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("the host key of %s has CHANGED: the server presented %s %s but %s:%d records %s. "+
			"Someone may be intercepting the connection (man-in-the-middle attack), or the server's host key was replaced. "+
			"Confirm the new fingerprint with the server's administrator; only if it is legitimate, remove the old entry "+
			"(ssh-keygen -R '%s' -f %s) and add this line to %s:\n    %s",
			e.Host, e.KeyType, e.Fingerprint, e.KnownFile, e.KnownLine, e.KnownFingerprint,
			e.Host, e.KnownFile, e.KnownFile, e.Line)
	}
	file := e.File
	if file == "" {
		file = "your known_hosts file"
	}
	return fmt.Sprintf("the host key of %s is unknown (%s %s): if that fingerprint is the server's "+
		"(on the server: ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), append this line to %s:\n    %s\n"+
		"or run again with --ssh-accept-new to trust the key on first use",
		e.Host, e.KeyType, e.Fingerprint, keyFileType(e.KeyType), file, e.Line)
}

func keyFileType(t string) string {
	switch {
	case strings.Contains(t, "ed25519"):
		return "ed25519"
	case strings.Contains(t, "ecdsa"):
		return "ecdsa"
	case strings.Contains(t, "rsa"):
		return "rsa"
	}
	return "*"
}

// hostKeys is the known_hosts database for one connection attempt (re-read at every connect, so
// edits to the files take effect on the next reconnect).
type hostKeys struct {
	r   Resolved
	log *slog.Logger
	cb  ssh.HostKeyCallback
}

func loadHostKeys(r Resolved, log *slog.Logger) (*hostKeys, error) {
	var files []string
	for _, f := range r.KnownHostsFiles {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read known_hosts %s: %v; fix its permissions", f, err)
		}
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("read known_hosts: %v; fix or remove the broken lines", err)
	}
	return &hostKeys{r: r, log: log, cb: cb}, nil
}

var (
	probeOnce sync.Once
	probeKey  ssh.PublicKey
)

// known returns the keys recorded for addr: asked with a key that cannot be recorded, the
// knownhosts callback lists every key it has for the host.
func (h *hostKeys) known(addr string) []knownhosts.KnownKey {
	probeOnce.Do(func() {
		pub, _, err := ed25519.GenerateKey(nil)
		if err == nil {
			probeKey, _ = ssh.NewPublicKey(pub)
		}
	})
	if probeKey == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if errors.As(h.cb(addr, fakeAddr(addr), probeKey), &ke) {
		return ke.Want
	}
	return nil
}

// algorithms orders host key algorithms so that the server presents a key type recorded for addr
// (OpenSSH does the same); nil (the library's defaults) when nothing is recorded.
func (h *hostKeys) algorithms(addr string) []string {
	var first []string
	for _, k := range h.known(addr) {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !slices.Contains(first, a) {
				first = append(first, a)
			}
		}
	}
	if len(first) == 0 {
		return nil
	}
	out := first
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func algorithmsFor(keyType string) []string {
	switch keyType {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSAv01}
	}
	return []string{keyType}
}

func fakeAddr(addr string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil || a.IP == nil {
		return &net.TCPAddr{IP: net.IPv4zero}
	}
	return a
}

// callback verifies the server's key; unknown keys are appended when AcceptNew is set.
func (h *hostKeys) callback() ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := h.cb(hostname, remote, key)
		if err == nil {
			return nil
		}
		var revoked *knownhosts.RevokedError
		if errors.As(err, &revoked) {
			return fmt.Errorf("the host key of %s (%s) is marked @revoked at %s:%d: refusing to connect; ask the server's administrator for its current key",
				knownhosts.Normalize(hostname), ssh.FingerprintSHA256(key), revoked.Revoked.Filename, revoked.Revoked.Line)
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return fmt.Errorf("check the host key of %s: %v", hostname, err)
		}
		hke := &HostKeyError{
			Host:        knownhosts.Normalize(hostname),
			KeyType:     key.Type(),
			Fingerprint: ssh.FingerprintSHA256(key),
			Line:        knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key),
			File:        h.r.KnownHostsWrite,
		}
		if len(ke.Want) > 0 {
			w := ke.Want[0]
			// Prefer a recorded key of the same type when there are several.
			for _, k := range ke.Want {
				if k.Key.Type() == key.Type() {
					w = k
					break
				}
			}
			hke.Changed = true
			hke.KnownFile, hke.KnownLine, hke.KnownFingerprint = w.Filename, w.Line, ssh.FingerprintSHA256(w.Key)
			return hke
		}
		if !h.r.AcceptNew || h.r.KnownHostsWrite == "" {
			return hke
		}
		if err := h.appendKey(hostname, key); err != nil {
			return err
		}
		h.log.Warn("trusting a new ssh host key (accept-new)", "host", hke.Host, "key", hke.KeyType,
			"fingerprint", hke.Fingerprint, "known_hosts", h.r.KnownHostsWrite)
		return nil
	}
}

var appendMu sync.Mutex

// appendKey adds the key to KnownHostsWrite under a lock, re-checking the file once the lock is
// held (another process may have recorded this host meanwhile).
func (h *hostKeys) appendKey(hostname string, key ssh.PublicKey) error {
	appendMu.Lock()
	defer appendMu.Unlock()
	path := h.r.KnownHostsWrite
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("accept-new: create the directory of %s: %v", path, err)
	}
	lock := flock.New(path, flock.SetPermissions(0o600))
	if err := lock.Lock(); err != nil {
		return fmt.Errorf("accept-new: lock %s: %v; check its permissions", path, err)
	}
	defer lock.Unlock()

	again, err := loadHostKeys(Resolved{KnownHostsFiles: []string{path}, KnownHostsWrite: path}, h.log)
	if err != nil {
		return err
	}
	if err := again.callback()(hostname, fakeAddr(hostname), key); err == nil {
		return nil // recorded by someone else meanwhile
	} else if hke := (*HostKeyError)(nil); errors.As(err, &hke) && hke.Changed {
		return err
	}

	host := knownhosts.Normalize(hostname)
	if h.r.HashKnownHosts {
		host = knownhosts.HashHostname(host)
	}
	line := knownhosts.Line([]string{host}, key) + "\n"
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("accept-new: open %s: %v; check its permissions", path, err)
	}
	// A file that does not end with a newline would glue our line to its last one.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		if last := lastByte(path, st.Size()); last != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("accept-new: append to %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("accept-new: append to %s: %v", path, err)
	}
	return nil
}

func lastByte(path string, size int64) byte {
	f, err := os.Open(path)
	if err != nil {
		return '\n'
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size-1); err != nil {
		return '\n'
	}
	return b[0]
}
