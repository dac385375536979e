package sshx

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// EncryptedKeyError says that a key file needs a passphrase and no agent holds the key. It is
// returned only when no other key was accepted.
type EncryptedKeyError struct {
	// Path of the key file.
	Path string
}

func (e *EncryptedKeyError) Error() string {
	return fmt.Sprintf("key %s is encrypted; add it to ssh-agent (ssh-add %s) and make sure SSH_AUTH_SOCK is set", e.Path, e.Path)
}

// keys is what one connection attempt can authenticate with.
type keys struct {
	signers   []ssh.Signer
	agentConn net.Conn // closed once the handshake is over
	fromAgent int
	files     []string // key files that loaded
	encrypted []string // encrypted key files the agent does not hold
	notes     []string // what was looked at, for the error when nothing worked
}

func (k *keys) close() {
	if k.agentConn != nil {
		k.agentConn.Close()
	}
}

// loadKeys collects the agent's keys, then the identity files' (skipping keys the agent holds).
func loadKeys(r Resolved, log *slog.Logger) *keys {
	k := &keys{}
	seen := map[string]bool{}
	add := func(s ssh.Signer) bool {
		m := string(s.PublicKey().Marshal())
		if seen[m] {
			return false
		}
		seen[m] = true
		k.signers = append(k.signers, s)
		return true
	}

	switch {
	case r.AgentSocket == "":
		k.notes = append(k.notes, "no ssh-agent (SSH_AUTH_SOCK unset, or the agent disabled)")
	default:
		conn, err := net.DialTimeout("unix", r.AgentSocket, 2*time.Second)
		if err != nil {
			log.Debug("ssh-agent unreachable", "socket", r.AgentSocket, "err", err)
			k.notes = append(k.notes, fmt.Sprintf("ssh-agent at %s unreachable (%v)", r.AgentSocket, err))
			break
		}
		signers, err := agent.NewClient(conn).Signers()
		if err != nil {
			conn.Close()
			log.Debug("ssh-agent failed to list keys", "socket", r.AgentSocket, "err", err)
			k.notes = append(k.notes, fmt.Sprintf("ssh-agent at %s failed (%v)", r.AgentSocket, err))
			break
		}
		k.agentConn = conn
		for _, s := range signers {
			if add(s) {
				k.fromAgent++
			}
		}
		k.notes = append(k.notes, fmt.Sprintf("%d key(s) from ssh-agent", k.fromAgent))
		if k.fromAgent == 0 {
			conn.Close()
			k.agentConn = nil
		}
	}

	for _, path := range r.IdentityFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && r.DefaultIdentities {
				continue
			}
			log.Warn("cannot read ssh identity file", "path", path, "err", err)
			k.notes = append(k.notes, fmt.Sprintf("%s unreadable (%v)", path, err))
			continue
		}
		signer, err := ssh.ParsePrivateKey(b)
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			pub := missing.PublicKey
			if pub == nil {
				pub = readPublicKey(path + ".pub")
			}
			if pub != nil && seen[string(pub.Marshal())] {
				log.Debug("encrypted key file is held by ssh-agent", "path", path)
				continue
			}
			k.encrypted = append(k.encrypted, path)
			k.notes = append(k.notes, path+" encrypted and not in ssh-agent")
		case err != nil:
			log.Warn("cannot parse ssh identity file", "path", path, "err", err)
			k.notes = append(k.notes, fmt.Sprintf("%s not a usable private key (%v)", path, err))
		default:
			if add(signer) {
				k.files = append(k.files, path)
			}
		}
	}
	if len(k.files) > 0 {
		k.notes = append(k.notes, "key file(s) "+strings.Join(k.files, ", "))
	}
	if r.DefaultIdentities && len(k.files) == 0 && len(k.encrypted) == 0 {
		k.notes = append(k.notes, "no key in "+strings.Join(r.IdentityFiles, ", "))
	}
	return k
}

func readPublicKey(path string) ssh.PublicKey {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(bytes.TrimSpace(b))
	if err != nil {
		return nil
	}
	return pub
}

func (k *keys) methods() []ssh.AuthMethod {
	if len(k.signers) == 0 {
		return nil
	}
	// One publickey method with every key: x/crypto tries each method name once, so a second
	// publickey method would never run.
	return []ssh.AuthMethod{ssh.PublicKeys(k.signers...)}
}

// authError turns x/crypto's "unable to authenticate" into an error that says what to do.
func (k *keys) authError(r Resolved, err error) error {
	if len(k.encrypted) > 0 {
		return &EncryptedKeyError{Path: k.encrypted[0]}
	}
	tried := strings.Join(k.notes, "; ")
	if len(k.signers) == 0 {
		return fmt.Errorf("no ssh key to log in to %s as %s (%s): create one with ssh-keygen -t ed25519, add its .pub to ~/.ssh/authorized_keys of %s on the server, and load it into ssh-agent or set IdentityFile in ~/.ssh/config",
			r.Addr(), r.User, tried, r.User)
	}
	return fmt.Errorf("ssh server %s refused every key for user %s (%s): add one of their public keys to ~/.ssh/authorized_keys of %s on the server, or set IdentityFile for this host in ~/.ssh/config (%v)",
		r.Addr(), r.User, tried, r.User, err)
}
