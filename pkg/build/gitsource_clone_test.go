package build

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/testutil/sshd"
)

// testRepo is a bare repository with two commits: v1 (tag) has envs/calc/env.py returning 1 and
// README only at the root; main's head changes the env to return 2.
type testRepo struct {
	bare       string // path of the bare repository
	v1, head   string // commit hashes
	parentPath string // the directory holding the bare repository (git daemon's base path)
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func newTestRepo(t *testing.T) testRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("these tests run git: apt-get install git (%v)", err)
	}
	work := t.TempDir()
	git(t, work, "init", "--quiet", "-b", "main")
	write := func(rel, text string) {
		p := filepath.Join(work, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README", "no env here\n")
	write("envs/calc/env.py", "class Actor:\n    def version(self):\n        return 1\n")
	git(t, work, "add", "-A")
	git(t, work, "commit", "--quiet", "-m", "v1")
	git(t, work, "tag", "v1")
	v1 := git(t, work, "rev-parse", "HEAD")
	write("envs/calc/env.py", "class Actor:\n    def version(self):\n        return 2\n")
	git(t, work, "commit", "--quiet", "-am", "v2")
	head := git(t, work, "rev-parse", "HEAD")
	parent := t.TempDir()
	bare := filepath.Join(parent, "envs.git")
	git(t, parent, "clone", "--quiet", "--bare", work, bare)
	return testRepo{bare: bare, v1: v1, head: head, parentPath: parent}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startGitDaemon serves the repository's parent directory with `git daemon` on 127.0.0.1.
func startGitDaemon(t *testing.T, r testRepo) string {
	t.Helper()
	port := freeTCPPort(t)
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--informative-errors",
		"--listen=127.0.0.1", "--port="+strconv.Itoa(port), "--base-path="+r.parentPath, r.parentPath)
	// `git daemon` runs git-daemon as its child: a process group of its own lets the cleanup stop
	// both, and a log file (not a pipe) keeps Wait from waiting on a survivor's open stderr.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logPath := filepath.Join(t.TempDir(), "git-daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("git daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("git daemon never listened on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "git://" + addr + "/envs.git"
}

func cloneOK(t *testing.T, url string, o GitOptions) *GitCheckout {
	t.Helper()
	src, err := ParseGitSource(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	co, err := CloneGit(ctx, src, o)
	if err != nil {
		t.Fatalf("CloneGit(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = co.Remove() })
	return co
}

func cloneFails(t *testing.T, url string, kind *errs.Kind, substr string) {
	t.Helper()
	src, err := ParseGitSource(url)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	_, err = CloneGit(context.Background(), src, GitOptions{TempDir: tmp})
	if err == nil || !errors.Is(err, kind) || !strings.Contains(err.Error(), substr) {
		t.Fatalf("CloneGit(%s) = %v, want a %v error containing %q", url, err, kind, substr)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("a failed clone left %d entries in its temporary directory", len(left))
	}
}

func checkVersion(t *testing.T, co *GitCheckout, want int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(co.Dir, "env.py"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), fmt.Sprintf("return %d", want)) {
		t.Errorf("checked out env.py is %q, want version %d", b, want)
	}
}

func TestCloneGitFileURL(t *testing.T) {
	r := newTestRepo(t)
	url := "file://" + r.bare
	co := cloneOK(t, url+"#v1:envs/calc", GitOptions{})
	if co.Commit != r.v1 {
		t.Errorf("commit %s, want v1 %s", co.Commit, r.v1)
	}
	checkVersion(t, co, 1)
	if n := git(t, filepath.Dir(filepath.Dir(co.Dir)), "rev-list", "--count", "HEAD"); n != "1" {
		t.Errorf("the clone has %s commits, want 1 (shallow)", n)
	}
	root := co.root
	if err := co.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("Remove left %s: %v", root, err)
	}

	head := cloneOK(t, url+"#:envs/calc", GitOptions{})
	if head.Commit != r.head {
		t.Errorf("default branch commit %s, want %s", head.Commit, r.head)
	}
	checkVersion(t, head, 2)
	byHash := cloneOK(t, url+"#"+r.v1+":envs/calc", GitOptions{})
	checkVersion(t, byHash, 1)
	if l := byHash.Labels(); l[LabelSourceCommit] != r.v1 || l[LabelSourceURL] != url || l[LabelSourceSubdir] != "envs/calc" {
		t.Errorf("labels %v", l)
	}

	cloneFails(t, url+"#nosuchbranch:envs/calc", errs.Usage, `no branch, tag or commit "nosuchbranch"`)
	cloneFails(t, url+"#v1:envs/nope", errs.Usage, "has no directory envs/nope")
	cloneFails(t, url+"#v1", errs.Usage, "no env.py in its root")
	cloneFails(t, url+"#v1:envs", errs.Usage, "no env.py in envs")
}

func TestCloneGitDaemon(t *testing.T) {
	r := newTestRepo(t)
	url := startGitDaemon(t, r)
	co := cloneOK(t, url+"#v1:envs/calc", GitOptions{})
	if co.Commit != r.v1 {
		t.Errorf("commit %s, want %s", co.Commit, r.v1)
	}
	checkVersion(t, co, 1)
	checkVersion(t, cloneOK(t, url+"#main:envs/calc", GitOptions{}), 2)
	cloneFails(t, url+"#v9:envs/calc", errs.Usage, `no branch, tag or commit "v9"`)
	cloneFails(t, strings.TrimSuffix(url, "envs.git")+"other.git#v1:envs/calc", errs.NotFound, "no git repository")
}

func TestCloneGitSSH(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test sshd (skipped by -short)")
	}
	r := newTestRepo(t)
	srv := sshd.Start(t)
	kh := srv.WriteKnownHosts(t, "")
	sshCmd := func(extra string) []string {
		return []string{"GIT_SSH_COMMAND=ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes" +
			" -o UserKnownHostsFile=" + kh + " -i " + srv.ClientKeyPath + extra}
	}
	co := cloneOK(t, "ssh://root@"+srv.Addr+r.bare+"#v1:envs/calc", GitOptions{Env: sshCmd("")})
	if co.Commit != r.v1 {
		t.Errorf("commit %s, want %s", co.Commit, r.v1)
	}
	checkVersion(t, co, 1)
	// The scp-like form has no port: git passes it to ssh through GIT_SSH_COMMAND. known_hosts
	// names the server [127.0.0.1]:PORT, which ssh looks up with -p.
	scp := cloneOK(t, "root@127.0.0.1:"+r.bare+"#main:envs/calc", GitOptions{Env: sshCmd(" -p " + strconv.Itoa(srv.Port))})
	checkVersion(t, scp, 2)

	// A host whose key is not trusted is refused: the clone never falls back to accepting it.
	other := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src, _ := ParseGitSource("ssh://root@" + srv.Addr + r.bare + "#v1:envs/calc")
	_, err := CloneGit(context.Background(), src, GitOptions{Env: []string{"GIT_SSH_COMMAND=ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" + other + " -i " + srv.ClientKeyPath}})
	if err == nil || !errors.Is(err, errs.Infra) || !strings.Contains(err.Error(), "Host key verification failed") {
		t.Fatalf("clone from an untrusted host: %v, want an infrastructure error naming the host key", err)
	}
}
