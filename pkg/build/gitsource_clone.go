package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/rfenv/rfenv/pkg/errs"
)

// GitCheckout is a shallow clone of a GitSource in a temporary directory. Remove deletes it.
type GitCheckout struct {
	Source GitSource
	Dir    string // the environment directory to build: the clone, or its Subdir
	Commit string // the full hash of the commit checked out
	root   string
}

// Labels are the image labels that record the source and commit (pass them to Options.Labels).
func (c *GitCheckout) Labels() map[string]string { return c.Source.labels(c.Commit) }

// Remove deletes the clone.
func (c *GitCheckout) Remove() error {
	if c == nil || c.root == "" {
		return nil
	}
	return os.RemoveAll(c.root)
}

// GitOptions adjust how a repository is cloned.
type GitOptions struct {
	// Env is added to this process's environment for git, e.g. GIT_SSH_COMMAND. The user's own
	// git and SSH setup (credential helpers, ~/.ssh/config, the agent) applies as it would in a shell.
	Env []string
	// TempDir is where the clone goes ("" = the system's temporary directory).
	TempDir string
}

// hexCommit is a full or abbreviated commit hash, which no server advertises as a ref.
var hexCommit = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-fA-F]{7,64}$`) })

// CloneGit fetches src's ref (only that commit, depth 1) into a new temporary directory and checks
// it out. It uses the git binary, so that the user's credentials and SSH configuration work as they
// do for `git clone`. A ref or subdirectory that does not exist, or a directory without env.py, is
// an errs.Usage error; a server that cannot be reached is errs.Infra.
func CloneGit(ctx context.Context, src GitSource, o GitOptions) (*GitCheckout, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, errs.New(errs.Usage, "building from %s needs the git program: install git", src.describe())
	}
	root, err := os.MkdirTemp(o.TempDir, "rfenv-git-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a temporary directory for the clone: %w", err)
	}
	co := &GitCheckout{Source: src, root: root}
	ok := false
	defer func() {
		if !ok {
			_ = co.Remove()
		}
	}()
	g := &gitRunner{dir: root, env: append(os.Environ(), append([]string{
		// Never wait on a password prompt nobody sees; credential helpers and agents still answer.
		"GIT_TERMINAL_PROMPT=0",
		// Advice and the detached-HEAD warning are noise here.
		"GIT_ADVICE=0",
	}, o.Env...)...), src: src}
	if _, err := g.run(ctx, "init", "--quiet"); err != nil {
		return nil, err
	}
	if _, err := g.run(ctx, "remote", "add", "origin", src.URL); err != nil {
		return nil, err
	}
	ref := src.Ref
	if ref == "" {
		ref = "HEAD"
	}
	if _, err := g.run(ctx, "fetch", "--quiet", "--depth", "1", "--no-tags", "origin", ref); err != nil {
		// A server that forbids fetching an unadvertised commit by hash: take the whole history.
		if !hexCommit().MatchString(src.Ref) || errs.KindOf(err) == errs.Infra {
			return nil, err
		}
		if _, err2 := g.run(ctx, "fetch", "--quiet", "--no-tags", "origin"); err2 != nil {
			return nil, err2
		}
		if _, err := g.run(ctx, "checkout", "--quiet", src.Ref); err != nil {
			return nil, errs.New(errs.Usage, "%s: no commit %s in the repository", src.describe(), src.Ref)
		}
	} else if _, err := g.run(ctx, "checkout", "--quiet", "FETCH_HEAD"); err != nil {
		return nil, err
	}
	out, err := g.run(ctx, "rev-parse", "HEAD")
	if err != nil {
		return nil, err
	}
	co.Commit = strings.TrimSpace(out)
	co.Dir = root
	if src.Subdir != "" {
		co.Dir = filepath.Join(root, filepath.FromSlash(src.Subdir))
		fi, err := os.Stat(co.Dir)
		if err != nil || !fi.IsDir() {
			return nil, errs.New(errs.Usage, "%s: commit %.12s has no directory %s", src.describe(), co.Commit, src.Subdir)
		}
	}
	if !regularFile(filepath.Join(co.Dir, "env.py")) {
		where := "its root"
		if src.Subdir != "" {
			where = src.Subdir
		}
		return nil, errs.New(errs.Usage, "%s: commit %.12s has no env.py in %s (add #REF:SUBDIR to the URL to build a subdirectory)", src.describe(), co.Commit, where)
	}
	ok = true
	return co, nil
}

type gitRunner struct {
	dir string
	env []string
	src GitSource
}

// run runs one git command and classifies its failure from git's own message.
func (g *gitRunner) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", g.dir}, args...)...)
	cmd.Env = g.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.String(), nil
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("cloning %s interrupted: %w", g.src, context.Cause(ctx))
	}
	msg := strings.TrimSpace(Redact(stderr.String()))
	if msg == "" {
		msg = err.Error()
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return "", errs.New(errs.Infra, "cannot run git for %s: %v", g.src.describe(), err)
	}
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "couldn't find remote ref") || strings.Contains(low, "not our ref") ||
		strings.Contains(low, "no such remote ref") || strings.Contains(low, "unadvertised object"):
		return "", errs.New(errs.Usage, "%s: no branch, tag or commit %q in the repository (git: %s)", g.src.describe(), g.src.Ref, lastLine(msg))
	case strings.Contains(low, "does not appear to be a git repository") || strings.Contains(low, "repository not found") ||
		strings.Contains(low, "no such repository") ||
		strings.Contains(low, "not found") && strings.Contains(low, "repository"):
		return "", errs.New(errs.NotFound, "%s: no git repository there (git: %s)", g.src.describe(), lastLine(msg))
	case args[0] == "fetch":
		return "", errs.New(errs.Infra, "cannot fetch %s: %s\ncheck the URL, the network and your git/SSH credentials (the clone runs `git fetch` as you would)", g.src.describe(), msg)
	}
	return "", fmt.Errorf("git %s for %s failed: %s", args[0], g.src.describe(), msg)
}

// lastLine is git's final, usually most specific, message line.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
