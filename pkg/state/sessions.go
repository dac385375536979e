package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Session pins calls to one replica of an environment: the replica that holds its episode state.
//
// The table is shared by every process of a state directory, so that a CI script calling
// `rfenv call --session KEY` once per step reaches the same replica each time. It lives apart from
// state.json, one small file per session under sessions/<env>/, because a session call updates its
// own record (last use, call count) and must not rewrite the state file or contend with other
// sessions: a call is open + flock + pread + pwrite + close on its own file, a few microseconds.
// Opening a session takes the environment's sessions lock, so that placement (which counts the live
// sessions of each replica) never races another open.
type Session struct {
	Key     string `json:"key"`
	Replica int    `json:"replica"`
	// BootID is the replica's server process at open time: a replica restarted (or replaced) since
	// has another one, and its in-memory episodes are gone.
	BootID   string    `json:"boot_id,omitempty"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"`
	Calls    int64     `json:"calls"`
}

// ErrSessionExists: Open was asked for a key that another process opened first.
var ErrSessionExists = errors.New("session already exists")

// SessionLockTimeout bounds the wait to open a session when ctx has no deadline. Placement reads
// every open session under the lock, so thousands of opens at once take a while.
const SessionLockTimeout = 5 * time.Minute

var openMutexes sync.Map // session table directory → *sync.Mutex

func openMutex(dir string) *sync.Mutex {
	m, _ := openMutexes.LoadOrStore(dir, &sync.Mutex{})
	return m.(*sync.Mutex)
}

// MaxSessionKey bounds a session key's length; keys are otherwise free-form (scripts choose them).
const MaxSessionKey = 256

// ValidateSessionKey reports whether key can name a session.
func ValidateSessionKey(key string) error {
	switch {
	case key == "":
		return errors.New("session key is empty")
	case len(key) > MaxSessionKey:
		return fmt.Errorf("session key is longer than %d bytes", MaxSessionKey)
	case strings.ContainsAny(key, "\x00\n\r"):
		return fmt.Errorf("session key %q contains a control character", key)
	}
	return nil
}

// Sessions is the session table of the environment name.
func (s *Store) Sessions(name string) (*SessionTable, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return &SessionTable{store: s, dir: filepath.Join(s.dir, sessionsDir, name)}, nil
}

const sessionsDir = "sessions"

// SessionTable is one environment's sessions.
type SessionTable struct {
	store *Store
	dir   string
}

func (t *SessionTable) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(t.dir, hex.EncodeToString(sum[:16])+".json")
}

// Get returns the session key, or false if it is not open.
func (t *SessionTable) Get(key string) (Session, bool, error) {
	b, err := os.ReadFile(t.path(key))
	if errors.Is(err, os.ErrNotExist) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, fmt.Errorf("session table %s: %w", t.dir, err)
	}
	var sess Session
	if err := json.Unmarshal(b, &sess); err != nil || sess.Key != key {
		// A torn record (a crash mid-write) or a hash collision: treat it as not open.
		return Session{}, false, nil
	}
	return sess, true, nil
}

// List returns every open session, in no particular order.
func (t *SessionTable) List() ([]Session, error) {
	entries, err := os.ReadDir(t.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("session table %s: %w", t.dir, err)
	}
	out := make([]Session, 0, len(entries))
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") { // not .tmp or .lock
			continue
		}
		b, err := os.ReadFile(filepath.Join(t.dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		var sess Session
		if json.Unmarshal(b, &sess) == nil && sess.Key != "" {
			out = append(out, sess)
		}
	}
	return out, nil
}

// Open places a new session: under the table's lock, place gets the open sessions and returns the
// session to record (its Replica and BootID chosen), or an error that Open returns as is. A key
// already open gives ErrSessionExists (with the existing session), so two processes opening the
// same key on first use agree on one replica.
func (t *SessionTable) Open(ctx context.Context, key string, place func(open []Session) (Session, error)) (Session, error) {
	if err := ValidateSessionKey(key); err != nil {
		return Session{}, err
	}
	if _, err := mkdirPrivate(t.store.dir); err != nil {
		return Session{}, err
	}
	if err := os.MkdirAll(t.dir, dirMode); err != nil {
		return Session{}, fmt.Errorf("session table %s: %w", t.dir, err)
	}
	// Goroutines of one process queue on a mutex, in order, before the flock that serialises
	// processes (a polled flock serves waiters in no order, and a burst of opens starves some).
	mu := openMutex(t.dir)
	mu.Lock()
	defer mu.Unlock()
	unlock, err := lockFile(ctx, filepath.Join(t.dir, ".lock"), SessionLockTimeout, "the session lock %s")
	if err != nil {
		return Session{}, err
	}
	defer unlock()
	if sess, ok, err := t.Get(key); err != nil {
		return Session{}, err
	} else if ok {
		return sess, ErrSessionExists
	}
	open, err := t.List()
	if err != nil {
		return Session{}, err
	}
	sess, err := place(open)
	if err != nil {
		return Session{}, err
	}
	sess.Key = key
	b, err := json.Marshal(sess)
	if err != nil {
		return Session{}, err
	}
	// Write then rename, so a reader never sees a partial record.
	tmp := t.path(key) + ".tmp"
	if err := os.WriteFile(tmp, b, fileMode); err != nil {
		return Session{}, fmt.Errorf("session table %s: %w", t.dir, err)
	}
	if err := os.Rename(tmp, t.path(key)); err != nil {
		os.Remove(tmp)
		return Session{}, fmt.Errorf("session table %s: %w", t.dir, err)
	}
	return sess, nil
}

// Remove removes sessions (a closed, expired or lost one); keys not open are ignored.
func (t *SessionTable) Remove(keys ...string) error {
	for _, k := range keys {
		if err := os.Remove(t.path(k)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("session table %s: %w", t.dir, err)
		}
	}
	return nil
}

// Touch records calls more calls on the session and its last use at now, under the record's own
// flock. It reports false when the session is no longer open (closed by another process).
func (t *SessionTable) Touch(ctx context.Context, key string, calls int64, now time.Time) (bool, error) {
	f, err := os.OpenFile(t.path(key), os.O_RDWR, fileMode)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	unlock, err := lockRecord(ctx, f)
	if err != nil {
		return false, err
	}
	defer unlock()
	b, err := io.ReadAll(f)
	if err != nil {
		return false, err
	}
	var sess Session
	if json.Unmarshal(b, &sess) != nil || sess.Key != key {
		return false, nil
	}
	sess.Calls += calls
	if now.After(sess.LastUsed) {
		sess.LastUsed = now
	}
	out, err := json.Marshal(sess)
	if err != nil {
		return false, err
	}
	if _, err := f.WriteAt(out, 0); err != nil {
		return false, err
	}
	return true, f.Truncate(int64(len(out)))
}

// Drop removes the whole table (the environment went down).
func (t *SessionTable) Drop() error {
	if err := os.RemoveAll(t.dir); err != nil {
		return fmt.Errorf("session table %s: %w", t.dir, err)
	}
	return nil
}
