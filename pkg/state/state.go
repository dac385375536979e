// Package state is rfenv's local state file: the environments that are up, so that later rfenv
// processes (CLI calls, CI steps) find and reuse them.
//
// Layout of the state directory (see Dir):
//
//	state.json         the File, JSON, mode 0600 (it holds the environments' bearer tokens)
//	state.json.lock    flock(2) target serialising writers; never deleted
//	state.json.tmp     the next state.json while a writer holds the lock
//	counters/<name>    8-byte little-endian round-robin counter of one environment (NextCounter)
//
// Concurrency model: writers (Update) take an exclusive flock on state.json.lock, read state.json,
// apply the change and replace state.json by an atomic rename of a fully written and fsynced temp
// file. Readers (Load, Get) take no lock at all: rename(2) swaps the directory entry atomically, so a
// reader opens either the old or the new complete file, never a torn one, and `rfenv call` pays no
// locking syscalls on its hot path.
//
// Compatibility: a field added to Environment or Instance without bumping SchemaVersion is dropped
// when an older rfenv rewrites the file. That is acceptable only if losing it is harmless; otherwise
// bump SchemaVersion and add a migration (see migrations).
package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// SchemaVersion is the version of the state file this package reads and writes.
const SchemaVersion = 2

const (
	// FileName is the state file's name inside the state directory.
	FileName = "state.json"
	// DefaultLockTimeout bounds how long Update waits for the lock when ctx has no deadline.
	DefaultLockTimeout = 30 * time.Second

	lockSuffix  = ".lock"
	tmpSuffix   = ".tmp"
	countersDir = "counters"
	fileMode    = 0o600
	dirMode     = 0o700
	// Update polls a lock held by another process (flock(2) cannot wait with a deadline), first
	// after lockRetryMin, backing off to lockRetryMax. Writers hold the lock for one
	// read-modify-write plus two fsyncs (about a millisecond), so the first retries are quick;
	// the backoff and its jitter keep many waiting processes from stealing the holder's CPU
	// (a fixed 1 ms poll made 50 contending processes 2.5x slower, 3x under -race).
	lockRetryMin = 500 * time.Microsecond
	lockRetryMax = 10 * time.Millisecond
)

// File is the content of state.json.
type File struct {
	// Schema is the file's format version; SchemaVersion when written by this package.
	Schema int `json:"schema"`
	// Environments maps an environment's name to it. Never nil in a File returned by Load or
	// passed to an Update callback.
	Environments map[string]*Environment `json:"environments"`
}

// Names returns the environments' names, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Environments))
	for n := range f.Environments {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Environment is one environment that rfenv brought up (or attached to).
type Environment struct {
	Name    string `json:"name"`
	Image   string `json:"image,omitempty"`
	ImageID string `json:"image_id,omitempty"`
	// Type is "function" or "http".
	Type string `json:"type,omitempty"`
	// Port is the port the shim listens on inside the containers.
	Port int `json:"port,omitempty"`
	// Token is the environment's bearer token. It is not a user secret, but it is the reason the
	// state file is 0600.
	Token string `json:"token,omitempty"`
	// Balancer is "random", "round_robin" or "least_busy".
	Balancer   string `json:"balancer,omitempty"`
	ConfigHash string `json:"config_hash,omitempty"`
	// EnvKeys are the NAMES of the -e variables given at up, never their values.
	EnvKeys []string `json:"env_keys,omitempty"`
	// Hosts are the host specs used at up ("localhost", "ssh://user@h:22", ...).
	Hosts []string `json:"hosts,omitempty"`
	// Attached marks an environment registered with `rfenv attach`: down only forgets it.
	Attached bool `json:"attached,omitempty"`
	// Backend is the kind of backend that runs it (BackendDocker, BackendKube, BackendAttached):
	// the library dispatches on it. Schema 1 had no such field (see migrate1to2).
	Backend string `json:"backend,omitempty"`
	// Limits chosen at up; zero means the library's default.
	MaxInflight      int        `json:"max_inflight,omitempty"`       // calls in flight per replica from one process
	MaxSessions      int        `json:"max_sessions,omitempty"`       // live sessions per replica
	SessionTTLMs     int64      `json:"session_ttl_ms,omitempty"`     // idle time after which a session expires
	OverdueRestartMs int64      `json:"overdue_restart_ms,omitempty"` // restart a replica whose call is this far past its deadline
	Transport        string     `json:"transport,omitempty"`          // "direct" or "published": how calls reach the replicas
	CreatedAt        time.Time  `json:"created_at,omitzero"`
	Instances        []Instance `json:"instances,omitempty"`
}

// Instance is one replica of an environment.
type Instance struct {
	Index         int    `json:"index"`
	Host          string `json:"host,omitempty"`
	ContainerID   string `json:"container_id,omitempty"`
	ContainerName string `json:"container_name,omitempty"`
	Address       string `json:"address,omitempty"`
	Port          int    `json:"port,omitempty"`
	// URL is set for attached servers instead of a container.
	URL string `json:"url,omitempty"`
}

// Dir returns the default state directory, as an absolute path: $RFENV_STATE_DIR if set, else
// $XDG_STATE_HOME/rfenv (when XDG_STATE_HOME is absolute, as the XDG spec requires), else
// ~/.local/state/rfenv. A --state-dir flag overrides all of them; callers pass it to Open.
func Dir() (string, error) {
	if d := os.Getenv("RFENV_STATE_DIR"); d != "" {
		return absDir(d)
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "rfenv"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", fmt.Errorf("cannot find the state directory (set RFENV_STATE_DIR or pass --state-dir): %w", err)
	}
	return filepath.Join(home, ".local", "state", "rfenv"), nil
}

func absDir(d string) (string, error) {
	a, err := filepath.Abs(d)
	if err != nil {
		return "", fmt.Errorf("state directory %s: %w", d, err)
	}
	return a, nil
}

// StateID identifies a state directory: the first 12 hex characters of the sha256 of its absolute,
// cleaned path (symlinks are not resolved, so the ID is the same before and after the directory
// exists). Containers are labelled rfenv.state=<StateID> so that orphan clean-up never touches the
// containers of another state directory.
func StateID(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		dir = a
	} else {
		dir = filepath.Clean(dir)
	}
	sum := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(sum[:6])
}

// Store is the state file of one state directory. It is safe for concurrent use by goroutines and
// by processes.
type Store struct {
	dir      string
	path     string
	lockPath string

	// LockTimeout bounds how long Update waits for another process's lock when ctx has no
	// deadline (ctx cancellation is always honoured). Zero means wait as long as ctx allows.
	// Open sets DefaultLockTimeout.
	LockTimeout time.Duration
}

// Open returns the Store of dir, or of Dir() when dir is empty. It creates nothing: the directory
// and the file appear on the first write.
func Open(dir string) (*Store, error) {
	var err error
	if dir == "" {
		dir, err = Dir()
	} else {
		dir, err = absDir(dir)
	}
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, FileName)
	return &Store{dir: dir, path: p, lockPath: p + lockSuffix, LockTimeout: DefaultLockTimeout}, nil
}

// Dir returns the absolute state directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the absolute path of state.json.
func (s *Store) Path() string { return s.path }

// LockPath returns the absolute path of the lock file writers take.
func (s *Store) LockPath() string { return s.lockPath }

// ID returns StateID(s.Dir()).
func (s *Store) ID() string { return StateID(s.dir) }

// Load reads the state without writing or locking anything (see the package comment for why no
// lock is needed). A missing file (or directory) is an empty state. Errors: ErrCorrupt (as a
// *CorruptError) for an unparsable file, ErrSchemaTooNew for a file written by a newer rfenv.
// A file of an older schema is migrated in memory only.
func (s *Store) Load(ctx context.Context) (*File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, _, err := s.read()
	return f, err
}

// Get returns the environment called name. If there is none, the error matches ErrNotFound and
// errs.NotFound and lists the environments that exist.
func (s *Store) Get(ctx context.Context, name string) (*Environment, error) {
	f, err := s.Load(ctx)
	if err != nil {
		return nil, err
	}
	if e, ok := f.Environments[name]; ok {
		return e, nil
	}
	return nil, &NotFoundError{Name: name, Active: f.Names()}
}

// Update runs fn on the current state under an exclusive lock and, if fn returns nil, writes the
// result atomically: temp file in the same directory, fsync, chmod 0600, rename over state.json,
// fsync of the directory. If fn returns an error, nothing is written and Update returns that error
// unchanged. If the file is corrupt or of a newer schema, fn is not called and nothing is written.
//
// fn must be quick and must not call Update (that would deadlock until the lock times out): do the
// slow work (starting containers) outside and record its outcome in an Update.
//
// Writes normalise the file: Schema becomes SchemaVersion (an older file is migrated), an entry
// with an empty Name gets its key. A nil entry, an entry whose Name differs from its key, or a
// key that is not a valid name (ValidateName) is an error. If the change removes environments,
// their round-robin counters (NextCounter) are deleted after the write.
//
// The lock is waited for while ctx allows (bounded by LockTimeout when ctx has no deadline); when
// it runs out, the error names the lock file and wraps ctx's error.
func (s *Store) Update(ctx context.Context, fn func(*File) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	created, err := mkdirPrivate(s.dir)
	if err != nil {
		return err
	}
	if created {
		// A new directory's entry must survive a crash like the file's does.
		_ = syncDir(filepath.Dir(s.dir))
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()

	f, old, err := s.read()
	if err != nil {
		return err
	}
	before := f.Names()
	if err := fn(f); err != nil {
		return err
	}
	if err := normalize(f); err != nil {
		return err
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	data = append(data, '\n')

	if old == nil && len(f.Environments) == 0 {
		return nil // nothing to remember and nothing to replace
	}
	if old != nil && bytes.Equal(data, old.data) && old.mode == fileMode {
		return nil // unchanged
	}
	if err := s.write(data); err != nil {
		return err
	}
	for _, n := range before {
		// ValidateName: a hand-edited key like "../x" must not make us delete outside counters/.
		if _, ok := f.Environments[n]; !ok && ValidateName(n) == nil {
			// Best effort: a leftover counter is 8 harmless bytes. (.lock: the non-flock(2) platforms.)
			_ = os.Remove(s.counterPath(n))
			_ = os.Remove(s.counterPath(n) + lockSuffix)
		}
	}
	return nil
}

// onDisk is what read found on disk, for Update to detect no-op writes.
type onDisk struct {
	data []byte
	mode fs.FileMode
}

// read loads and decodes state.json; old is nil when the file does not exist.
func (s *Store) read() (f *File, old *onDisk, err error) {
	fh, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{Schema: SchemaVersion, Environments: map[string]*Environment{}}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read state file: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read state file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("state file %s is not a regular file", s.path)
	}
	data := make([]byte, 0, st.Size()+1)
	for {
		n, rerr := fh.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if rerr != nil {
			break // io.EOF or an error; a short read decodes as truncated -> ErrCorrupt
		}
		if len(data) == cap(data) {
			data = slices.Grow(data, 4096)
		}
	}
	f, err = decode(s.path, data)
	if err != nil {
		return nil, nil, err
	}
	return f, &onDisk{data: data, mode: st.Mode().Perm()}, nil
}

func migrate(path string, raw []byte, from int) ([]byte, error) {
	for v := from; v < SchemaVersion; v++ {
		m, ok := migrations[v]
		if !ok {
			return nil, fmt.Errorf("state file %s has schema version %d and rfenv cannot migrate it (no migration from %d)", path, from, v)
		}
		var err error
		if raw, err = m(raw); err != nil {
			return nil, fmt.Errorf("migrate state file %s from schema %d to %d: %w", path, v, v+1, err)
		}
	}
	return raw, nil
}

func decode(path string, data []byte) (*File, error) {
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		// The current types may not fit another schema: look at the version alone.
		var hdr struct {
			Schema int `json:"schema"`
		}
		if json.Unmarshal(data, &hdr) != nil || hdr.Schema < 1 || hdr.Schema == SchemaVersion {
			return nil, corrupt(path, err)
		}
		f.Schema = hdr.Schema
	}
	switch {
	case f.Schema > SchemaVersion:
		return nil, &SchemaError{Path: path, Version: f.Schema}
	case f.Schema < 1:
		return nil, &CorruptError{Path: path, Reason: "missing or invalid schema version"}
	case f.Schema < SchemaVersion:
		raw, err := migrate(path, data, f.Schema)
		if err != nil {
			return nil, err
		}
		f = File{}
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, corrupt(path, err)
		}
		f.Schema = SchemaVersion
	}
	if f.Environments == nil {
		f.Environments = map[string]*Environment{}
	}
	for k, e := range f.Environments {
		if e == nil {
			return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("environment %q is null", k)}
		}
	}
	return &f, nil
}

func corrupt(path string, err error) *CorruptError {
	reason := err.Error()
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		reason = fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	case errors.As(err, &te):
		reason = fmt.Sprintf("%s at byte %d", te.Error(), te.Offset)
	}
	return &CorruptError{Path: path, Reason: reason, Err: err}
}

func normalize(f *File) error {
	f.Schema = SchemaVersion
	if f.Environments == nil {
		f.Environments = map[string]*Environment{}
	}
	for k, e := range f.Environments {
		if e == nil {
			return fmt.Errorf("state: environment %q is nil", k)
		}
		if err := ValidateName(k); err != nil {
			return err
		}
		if e.Name == "" {
			e.Name = k
		} else if e.Name != k {
			return fmt.Errorf("state: environment stored under %q is named %q", k, e.Name)
		}
	}
	return nil
}

// write replaces state.json with data. The caller holds the lock, so the fixed temp name is ours.
// Because the new file is created 0600 and renamed over the old one, an existing state file with
// broader permissions (a user's chmod, an old umask) is tightened to 0600 by the next write.
func (s *Store) write(data []byte) (err error) {
	tmp := s.path + tmpSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write state file: %w", err)
	}
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = fh.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = fh.Write(data); err != nil {
		return fmt.Errorf("write state file %s: %w", tmp, err)
	}
	if err = fh.Sync(); err != nil {
		return fmt.Errorf("sync state file %s: %w", tmp, err)
	}
	// Explicit, in case the umask or the OS touched the creation mode.
	if err = fh.Chmod(fileMode); err != nil {
		return fmt.Errorf("chmod state file %s: %w", tmp, err)
	}
	if err = fh.Close(); err != nil {
		return fmt.Errorf("write state file %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("replace state file %s: %w", s.path, err)
	}
	if err := syncDir(s.dir); err != nil {
		// The rename happened; only its durability across a power cut is in doubt.
		return fmt.Errorf("sync state directory %s: %w", s.dir, err)
	}
	return nil
}

// lock takes the exclusive writer lock and returns its release function.
func (s *Store) lock(ctx context.Context) (func(), error) {
	return lockFile(ctx, s.lockPath, s.LockTimeout, "the state lock %s (another rfenv process holds it)")
}

// LockEnvironment serialises the processes that change one environment (up, down): a second `up`
// of the same name waits for the first and then reuses what it started, instead of racing it for
// container names. The lock is a file under locks/, separate from the state lock, which is only held
// for a read-modify-write. Waiting honours ctx, or EnvLockTimeout when ctx has no deadline.
func (s *Store) LockEnvironment(ctx context.Context, name string) (func(), error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, "locks")
	if _, err := mkdirPrivate(s.dir); err != nil {
		return nil, err
	}
	if _, err := mkdirPrivate(dir); err != nil {
		return nil, err
	}
	return lockFile(ctx, filepath.Join(dir, name+".lock"), EnvLockTimeout,
		"the lock of environment "+name+" %s (another rfenv up or down of it is running)")
}

// EnvLockTimeout bounds the wait for an environment's lock when the caller set no deadline: long
// enough for another process's up to wait for its replicas.
const EnvLockTimeout = 10 * time.Minute

// lockFile takes an exclusive flock on path, polling with jittered backoff until ctx (or timeout,
// when ctx has no deadline) ends. what describes the lock for the error, with %s for its path.
func lockFile(ctx context.Context, path string, timeout time.Duration, what string) (func(), error) {
	if _, ok := ctx.Deadline(); !ok && timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	l := flock.New(path, flock.SetPermissions(fileMode))
	var timer *time.Timer
	for delay := lockRetryMin; ; delay = min(2*delay, lockRetryMax) {
		ok, err := l.TryLock()
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			return func() { _ = l.Unlock() }, nil
		}
		// Jitter in [delay/2, delay) so that waiters do not retry in lockstep.
		d := delay/2 + rand.N(delay/2)
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("could not acquire "+what+": %w", path, ctx.Err())
		case <-timer.C:
		}
	}
}

// mkdirPrivate creates dir (and missing parents) with mode 0700 and reports whether dir was new.
// An existing directory keeps its mode: it may be one the user chose with --state-dir.
func mkdirPrivate(dir string) (bool, error) {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return false, fmt.Errorf("state directory %s is not a directory", dir)
		}
		return false, nil
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return false, fmt.Errorf("create state directory: %w", err)
	}
	if err := os.Chmod(dir, dirMode); err != nil { // MkdirAll's mode is subject to the umask
		return true, fmt.Errorf("create state directory: %w", err)
	}
	return true, nil
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for fsync there; NTFS journals the rename
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ValidateName reports whether name can name an environment: 1 to 128 characters from
// [A-Za-z0-9_.-], starting with a letter or digit (what Docker accepts in the container names
// <name>-<i>, and safe as a file name under counters/).
func ValidateName(name string) error {
	if name == "" {
		return errors.New("environment name is empty")
	}
	if len(name) > 128 {
		return fmt.Errorf("environment name %q is longer than 128 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '_' && c != '.' && c != '-')) {
			return fmt.Errorf("invalid environment name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", name)
		}
	}
	return nil
}

// shellQuote quotes p for a POSIX shell when it needs it, for the recovery hint.
func shellQuote(p string) string {
	if p != "" && strings.Trim(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:@,=") == "" {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
