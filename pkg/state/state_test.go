package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/rfenv/rfenv/pkg/errs"
)

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sampleEnv(name string) *Environment {
	return &Environment{
		Name:       name,
		Image:      "rfenv/" + name + ":latest",
		ImageID:    "sha256:0123456789abcdef",
		Type:       "function",
		Port:       8000,
		Token:      "deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef",
		Balancer:   "round_robin",
		ConfigHash: "sha256:abcdef",
		EnvKeys:    []string{"FOO", "BAR"},
		Hosts:      []string{"localhost", "ssh://user@h:22"},
		CreatedAt:  time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC),
		Instances: []Instance{
			{Index: 0, Host: "localhost", ContainerID: "c0", ContainerName: name + "-0", Address: "172.17.0.2", Port: 8000},
			{Index: 1, Host: "ssh://user@h:22", ContainerID: "c1", ContainerName: name + "-1", Address: "172.17.0.3", Port: 8000},
			{Index: 2, URL: "http://example.com:9000"},
		},
	}
}

func put(t testing.TB, s *Store, envs ...*Environment) {
	t.Helper()
	err := s.Update(context.Background(), func(f *File) error {
		for _, e := range envs {
			f.Environments[e.Name] = e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func perm(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestRoundTrip(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	a, b := sampleEnv("a"), &Environment{Name: "b", Attached: true, Instances: []Instance{{URL: "http://x"}}}
	put(t, s, a, b)

	f, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Schema != SchemaVersion {
		t.Errorf("schema = %d, want %d", f.Schema, SchemaVersion)
	}
	want := map[string]*Environment{"a": sampleEnv("a"), "b": {Name: "b", Attached: true, Instances: []Instance{{URL: "http://x"}}}}
	if !reflect.DeepEqual(f.Environments, want) {
		got, _ := json.Marshal(f.Environments)
		exp, _ := json.Marshal(want)
		t.Fatalf("round trip mismatch:\n got %s\nwant %s", got, exp)
	}
	if got := f.Names(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Names() = %v", got)
	}
	e, err := s.Get(ctx, "a")
	if err != nil || !reflect.DeepEqual(e, sampleEnv("a")) {
		t.Fatalf("Get(a) = %+v, %v", e, err)
	}

	// snake_case names, and omitempty on b.
	raw, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"schema": 2`, `"environments"`, `"image_id"`, `"config_hash"`, `"env_keys"`, `"created_at"`, `"container_id"`, `"container_name"`, `"url"`, `"attached": true`} {
		if !bytes.Contains(raw, []byte(k)) {
			t.Errorf("state.json lacks %s:\n%s", k, raw)
		}
	}
	var generic struct {
		Environments map[string]map[string]any `json:"environments"`
	}
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"token", "image", "created_at", "port", "env_keys", "hosts"} {
		if _, ok := generic.Environments["b"][k]; ok {
			t.Errorf("empty field %q of b was written: %s", k, raw)
		}
	}

	// Delete one; the other stays.
	if err := s.Update(ctx, func(f *File) error { delete(f.Environments, "a"); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(a) after delete: %v", err)
	}
	if _, err := s.Get(ctx, "b"); err != nil {
		t.Fatal(err)
	}
}

func TestMissingIsEmptyAndOpenCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f.Schema != SchemaVersion || f.Environments == nil || len(f.Environments) != 0 {
		t.Fatalf("empty state = %+v", f)
	}
	if _, err := s.Get(context.Background(), "x"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open/Load/Get created %s: %v", dir, err)
	}
}

func TestNotFoundMessage(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	_, err := s.Get(ctx, "foo")
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, errs.NotFound) {
		t.Fatalf("err = %v", err)
	}
	if want := `environment "foo" not found; no environment is active (start one with rfenv up)`; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	put(t, s, &Environment{Name: "b"}, &Environment{Name: "a"})
	_, err = s.Get(ctx, "foo")
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Name != "foo" {
		t.Fatalf("err = %#v", err)
	}
	if want := `environment "foo" not found; active: a, b (see rfenv ls)`; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}

func TestModes(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "x", "rfenv")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, &Environment{Name: "a"})
	if m := perm(t, dir); m != 0o700 {
		t.Errorf("dir mode %o, want 700", m)
	}
	if m := perm(t, s.Path()); m != 0o600 {
		t.Errorf("file mode %o, want 600", m)
	}
	if m := perm(t, s.LockPath()); m != 0o600 {
		t.Errorf("lock file mode %o, want 600", m)
	}
	if _, err := s.NextCounter(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if m := perm(t, filepath.Join(dir, "counters")); m != 0o700 {
		t.Errorf("counters dir mode %o, want 700", m)
	}
	if m := perm(t, filepath.Join(dir, "counters", "a")); m != 0o600 {
		t.Errorf("counter mode %o, want 600", m)
	}

	// A state file someone loosened is tightened by the next write.
	if err := os.Chmod(s.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	put(t, s, &Environment{Name: "b"})
	if m := perm(t, s.Path()); m != 0o600 {
		t.Errorf("file mode after rewrite %o, want 600", m)
	}
	// ... even when the content does not change.
	if err := os.Chmod(s.Path(), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(context.Background(), func(*File) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if m := perm(t, s.Path()); m != 0o600 {
		t.Errorf("file mode after no-op update %o, want 600", m)
	}
	if _, err := os.Stat(s.Path() + tmpSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file left behind: %v", err)
	}
}

func TestNoopUpdateDoesNotRewrite(t *testing.T) {
	s := openTemp(t)
	put(t, s, sampleEnv("a"))
	before, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(context.Background(), func(f *File) error { f.Environments["a"].Port = 8000; return nil }); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("an update that changed nothing replaced the file")
	}

	// An Update that adds nothing to a missing file does not create one.
	s2 := openTemp(t)
	if err := s2.Update(context.Background(), func(*File) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s2.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no-op update created the state file: %v", err)
	}
}

func TestUpdateCallbackErrorWritesNothing(t *testing.T) {
	s := openTemp(t)
	put(t, s, &Environment{Name: "a"})
	orig, _ := os.ReadFile(s.Path())
	sentinel := errors.New("nope")
	err := s.Update(context.Background(), func(f *File) error {
		delete(f.Environments, "a")
		f.Environments["b"] = &Environment{Name: "b"}
		return sentinel
	})
	if err != sentinel {
		t.Fatalf("err = %v, want the callback's error unchanged", err)
	}
	now, _ := os.ReadFile(s.Path())
	if !bytes.Equal(orig, now) {
		t.Fatalf("file changed:\n%s\n->\n%s", orig, now)
	}
}

func TestUpdateValidates(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		fn   func(*File) error
	}{
		{"nil entry", func(f *File) error { f.Environments["a"] = nil; return nil }},
		{"name mismatch", func(f *File) error { f.Environments["a"] = &Environment{Name: "b"}; return nil }},
		{"bad key", func(f *File) error { f.Environments["../x"] = &Environment{}; return nil }},
		{"empty key", func(f *File) error { f.Environments[""] = &Environment{}; return nil }},
	} {
		if err := s.Update(ctx, tc.fn); err == nil {
			t.Errorf("%s: Update accepted it", tc.name)
		}
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("invalid updates wrote the file: %v", err)
	}
	// An empty Name takes the key; a nil map is fine.
	if err := s.Update(ctx, func(f *File) error { f.Environments["k"] = &Environment{}; return nil }); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Get(ctx, "k"); err != nil || e.Name != "k" {
		t.Fatalf("Get(k) = %+v, %v", e, err)
	}
	if err := s.Update(ctx, func(f *File) error { f.Environments = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if f, err := s.Load(ctx); err != nil || len(f.Environments) != 0 {
		t.Fatalf("Load = %+v, %v", f, err)
	}
}

func TestCorrupt(t *testing.T) {
	valid, err := json.Marshal(&File{Schema: 1, Environments: map[string]*Environment{"a": sampleEnv("a"), "b": sampleEnv("b")}})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"truncated":  string(valid[:len(valid)/2]),
		"empty":      "",
		"garbage":    "not json at all\x00\xff",
		"trailing":   string(valid) + "}{",
		"null":       "null",
		"no schema":  `{"environments":{}}`,
		"null entry": `{"schema":1,"environments":{"a":null}}`,
		"wrong type": `{"schema":1,"environments":{"a":{"name":"a","port":"eighty"}}}`,
		"array":      `[]`,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			s := openTemp(t)
			if err := os.MkdirAll(s.Dir(), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.Path(), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: err = %v, want ErrCorrupt", op, err)
				}
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Path != s.Path() {
					t.Fatalf("%s: err = %#v", op, err)
				}
				msg := err.Error()
				for _, want := range []string{"state file " + s.Path() + " is corrupt", "mv " + s.Path() + " " + s.Path() + ".bad", "rfenv down --orphans"} {
					if !strings.Contains(msg, want) {
						t.Errorf("%s: message %q lacks %q", op, msg, want)
					}
				}
				if name == "truncated" && !strings.Contains(msg, "unexpected end of JSON input at byte ") {
					t.Errorf("%s: message %q lacks the decoder's reason and offset", op, msg)
				}
				now, err := os.ReadFile(s.Path())
				if err != nil || !bytes.Equal(now, []byte(content)) {
					t.Fatalf("%s modified the corrupt file (%v)", op, err)
				}
			}
			_, err := s.Load(context.Background())
			check("Load", err)
			_, err = s.Get(context.Background(), "a")
			check("Get", err)
			called := false
			err = s.Update(context.Background(), func(f *File) error {
				called = true
				f.Environments = map[string]*Environment{}
				return nil
			})
			check("Update", err)
			if called {
				t.Error("Update called the callback on a corrupt file")
			}
			if _, err := os.Stat(s.Path() + tmpSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temp file written: %v", err)
			}
		})
	}
}

func TestCorruptMessageQuotesPath(t *testing.T) {
	e := &CorruptError{Path: "/x y/it's/state.json", Reason: "r"}
	want := `state file /x y/it's/state.json is corrupt (r); move it aside (mv '/x y/it'\''s/state.json' '/x y/it'\''s/state.json.bad') and run "rfenv down --orphans" to remove containers it tracked`
	if e.Error() != want {
		t.Errorf("got  %s\nwant %s", e.Error(), want)
	}
}

func TestNewerSchema(t *testing.T) {
	for name, content := range map[string]string{
		"compatible shape": `{"schema":3,"environments":{"a":{"name":"a","future":{"x":1}}}}`,
		"other shape":      `{"schema":99,"environments":[1,2,3]}`,
	} {
		t.Run(name, func(t *testing.T) {
			s := openTemp(t)
			if err := os.MkdirAll(s.Dir(), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.Path(), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := s.Load(context.Background())
			if !errors.Is(err, ErrSchemaTooNew) || errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load: err = %v", err)
			}
			if !strings.Contains(err.Error(), "upgrade rfenv") || !strings.Contains(err.Error(), s.Path()) {
				t.Errorf("message %q", err)
			}
			err = s.Update(context.Background(), func(f *File) error { t.Error("callback called"); return nil })
			if !errors.Is(err, ErrSchemaTooNew) {
				t.Fatalf("Update: err = %v", err)
			}
			if now, _ := os.ReadFile(s.Path()); string(now) != content {
				t.Fatal("Update rewrote a newer-schema file")
			}
		})
	}
}

func TestDir(t *testing.T) {
	t.Setenv("RFENV_STATE_DIR", "")
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	check := func(want string) {
		t.Helper()
		got, err := Dir()
		if err != nil || got != want {
			t.Errorf("Dir() = %q, %v; want %q", got, err, want)
		}
	}
	check("/home/u/.local/state/rfenv")
	t.Setenv("XDG_STATE_HOME", "relative/ignored")
	check("/home/u/.local/state/rfenv")
	t.Setenv("XDG_STATE_HOME", "/xdg")
	check("/xdg/rfenv")
	t.Setenv("RFENV_STATE_DIR", "/explicit")
	check("/explicit")

	s, err := Open("")
	if err != nil || s.Dir() != "/explicit" || s.Path() != "/explicit/state.json" || s.LockPath() != "/explicit/state.json.lock" {
		t.Fatalf("Open(\"\") = %+v, %v", s, err)
	}
	s, err = Open("/flag")
	if err != nil || s.Dir() != "/flag" {
		t.Fatalf("Open(/flag) = %+v, %v", s, err)
	}
	cwd, _ := os.Getwd()
	s, err = Open("rel")
	if err != nil || s.Dir() != filepath.Join(cwd, "rel") {
		t.Fatalf("Open(rel) = %+v, %v", s, err)
	}
}

func TestStateID(t *testing.T) {
	cwd, _ := os.Getwd()
	id := StateID("rel/dir")
	if len(id) != 12 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("StateID = %q", id)
	}
	if id != StateID(filepath.Join(cwd, "rel", "dir")) || id != StateID("rel/./dir/") {
		t.Error("StateID differs for equivalent paths")
	}
	if id == StateID("rel/other") {
		t.Error("StateID equal for different dirs")
	}
	// Pin the definition: sha256("/a") starts 6a50dc858413.
	if got := StateID("/a"); got != "6a50dc858413" {
		t.Errorf("StateID(/a) = %s", got)
	}
	s, _ := Open("/a")
	if s.ID() != StateID("/a") {
		t.Error("Store.ID mismatch")
	}
}

func TestValidateName(t *testing.T) {
	for _, n := range []string{"a", "A1", "my-env_2.0", strings.Repeat("x", 128)} {
		if err := ValidateName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range []string{"", ".", "..", "-a", "_a", "a/b", "a b", "é", "a\x00", strings.Repeat("x", 129)} {
		if err := ValidateName(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestNextCounter(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	for want := uint64(0); want < 5; want++ {
		got, err := s.NextCounter(ctx, "a")
		if err != nil || got != want {
			t.Fatalf("NextCounter = %d, %v; want %d", got, err, want)
		}
	}
	if got, _ := s.NextCounter(ctx, "b"); got != 0 {
		t.Errorf("counters are not per environment: b starts at %d", got)
	}
	if _, err := s.NextCounter(ctx, "../a"); err == nil {
		t.Error("NextCounter accepted a path as a name")
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Error("NextCounter wrote state.json")
	}

	// Removing the environment removes its counter.
	put(t, s, &Environment{Name: "a"}, &Environment{Name: "b"})
	if err := s.Update(ctx, func(f *File) error { delete(f.Environments, "a"); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.counterPath("a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("counter of removed environment kept: %v", err)
	}
	if got, _ := s.NextCounter(ctx, "a"); got != 0 {
		t.Errorf("counter after removal = %d, want 0", got)
	}
	if got, _ := s.NextCounter(ctx, "b"); got != 1 {
		t.Errorf("counter of kept environment = %d, want 1", got)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.NextCounter(cctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

func TestNextCounterWaitHonoursCtx(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	if _, err := s.NextCounter(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// flock(2) locks belong to the open file description, so a second open in this process
	// conflicts like another process would.
	holder := flock.New(s.counterPath("a"))
	if err := holder.Lock(); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := s.NextCounter(tctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NextCounter under a held lock: %v", err)
	}
	if err := holder.Unlock(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.NextCounter(ctx, "a"); err != nil || got != 1 {
		t.Fatalf("NextCounter after release = %d, %v", got, err)
	}
}

func TestUpdateLockCancellation(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	put(t, s, &Environment{Name: "a"})
	orig, _ := os.ReadFile(s.Path())

	holder := flock.New(s.LockPath())
	if err := holder.Lock(); err != nil {
		t.Fatal(err)
	}
	noCall := func(*File) error { t.Error("callback ran without the lock"); return nil }

	// Deadline.
	tctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	err := s.Update(tctx, noCall)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), s.LockPath()) {
		t.Fatalf("Update under a held lock: %v", err)
	}

	// Cancellation from another goroutine while waiting.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Update(cctx, noCall) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Update: %v", err)
	}

	// LockTimeout applies when ctx has no deadline.
	s.LockTimeout = 20 * time.Millisecond
	if err := s.Update(ctx, noCall); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), s.LockPath()) {
		t.Fatalf("Update with LockTimeout: %v", err)
	}
	s.LockTimeout = DefaultLockTimeout

	if now, _ := os.ReadFile(s.Path()); !bytes.Equal(now, orig) {
		t.Fatal("file changed while the lock was held elsewhere")
	}

	// A waiting Update proceeds once the holder lets go.
	go func() {
		done <- s.Update(ctx, func(f *File) error { f.Environments["b"] = &Environment{}; return nil })
	}()
	if err := holder.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "b"); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateConcurrentGoroutines(t *testing.T) {
	s := openTemp(t)
	const workers, each = 16, 20
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for k := range each {
				err := s.Update(context.Background(), func(f *File) error {
					e := f.Environments["shared"]
					if e == nil {
						e = &Environment{}
						f.Environments["shared"] = e
					}
					e.Port++
					e.Instances = append(e.Instances, Instance{Index: w*each + k})
					return nil
				})
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	e, err := s.Get(context.Background(), "shared")
	if err != nil {
		t.Fatal(err)
	}
	if e.Port != workers*each || len(e.Instances) != workers*each {
		t.Fatalf("count %d, %d instances; want %d", e.Port, len(e.Instances), workers*each)
	}
}
