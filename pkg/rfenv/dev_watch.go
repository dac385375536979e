package rfenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDevDebounce is how long the watcher waits after the last change before reloading: an
// editor's save is often several events (write to a temporary file, rename, chmod), and a `git
// checkout` is hundreds. Short enough to stay well inside the one-second edit-to-answer target.
const DefaultDevDebounce = 75 * time.Millisecond

// ignoredName reports files whose changes never reach the environment: version control,
// bytecode caches and editors' swap and backup files.
func ignoredName(name string) bool {
	switch {
	case name == ".git" || name == "__pycache__" || name == ".mypy_cache" || name == ".pytest_cache" || name == ".venv" || name == "node_modules":
		return true
	case strings.HasSuffix(name, ".pyc") || strings.HasSuffix(name, ".swp") || strings.HasSuffix(name, ".swx") ||
		strings.HasSuffix(name, "~") || strings.HasPrefix(name, ".#") || name == "4913": // vim's write probe
		return true
	}
	return false
}

// watchTree calls onChange with the changed paths (relative to dir, sorted) once changes under dir
// have settled for debounce. It returns when ctx is done. New subdirectories are watched as they
// appear.
func watchTree(ctx context.Context, dir string, debounce time.Duration, onChange func([]string)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("cannot watch %s for changes: %w", dir, err)
	}
	defer w.Close()
	addTree := func(root string) error {
		return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed while walking
				}
				return err
			}
			if !d.IsDir() {
				return nil
			}
			if p != root && ignoredName(d.Name()) {
				return filepath.SkipDir
			}
			if err := w.Add(p); err != nil {
				return fmt.Errorf("cannot watch %s: %w (on Linux, raise fs.inotify.max_user_watches)", p, err)
			}
			return nil
		})
	}
	if err := addTree(dir); err != nil {
		return err
	}
	pending := map[string]bool{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			return fmt.Errorf("watching %s: %w", dir, err)
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			rel, err := filepath.Rel(dir, ev.Name)
			if err != nil || ignoredPath(rel) {
				continue
			}
			if ev.Op&fsnotify.Create != 0 {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = addTree(ev.Name) // best effort: a directory removed at once is no change to watch
				}
			}
			if ev.Op == fsnotify.Chmod {
				continue // touch and chmod change no code
			}
			pending[filepath.ToSlash(rel)] = true
			timer.Reset(debounce)
		case <-timer.C:
			if len(pending) == 0 {
				continue
			}
			changed := make([]string, 0, len(pending))
			for p := range pending {
				changed = append(changed, p)
			}
			slices.Sort(changed)
			clear(pending)
			onChange(changed)
		}
	}
}

// ignoredPath reports a relative path inside an ignored directory or naming an ignored file.
func ignoredPath(rel string) bool {
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if ignoredName(part) {
			return true
		}
	}
	return false
}
