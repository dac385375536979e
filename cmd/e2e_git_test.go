package cmd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/build"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestE2EBuildFromGit builds an environment from a subdirectory of a tagged commit of a real git
// repository (file://; git daemon and ssh are covered in pkg/build), checks the commit label, runs
// it with up --build, and checks the usage errors for a missing ref and subdirectory.
func TestE2EBuildFromGit(t *testing.T) {
	docker := e2e.Docker(t)
	c := newCLI(t, e2e.StateDir(t))
	work := t.TempDir()
	gitCmd(t, work, "init", "--quiet", "-b", "main")
	sub := filepath.Join(work, "envs", "calc")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Dockerfile", "env.py"} {
		b, err := os.ReadFile(filepath.Join(e2e.EnvDir(t, "actor"), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitCmd(t, work, "add", "-A")
	gitCmd(t, work, "commit", "--quiet", "-m", "calc")
	gitCmd(t, work, "tag", "v1")
	commit := gitCmd(t, work, "rev-parse", "HEAD")
	url := "file://" + work

	tag := "rfenv-test-git-calc:" + e2e.Name("v1")
	r := c.ok("build", url+"#v1:envs/calc", "-t", tag, "--progress", "plain")
	if strings.TrimSpace(r.stdout) != tag || !strings.Contains(r.stderr, "building commit "+commit[:12]) {
		t.Errorf("build: stdout %q stderr %q", r.stdout, r.stderr)
	}
	t.Cleanup(func() {
		for _, ref := range []string{tag, tag + "-base"} {
			_, _ = docker.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true})
		}
	})
	ins, err := docker.ImageInspect(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	labels := ins.Config.Labels
	if labels[build.LabelSourceCommit] != commit || labels[build.LabelSourceURL] != url || labels[build.LabelSourceRef] != "v1" || labels[build.LabelSourceSubdir] != "envs/calc" {
		t.Errorf("labels %v, want commit %s", labels, commit)
	}

	name := e2e.Name("gitcalc")
	c.ok("up", "--build", url+"#main:envs/calc", "-t", tag, "--name", name)
	if got := strings.TrimSpace(c.ok("call", name, "add", "--arg", "a=2", "--arg", "b=3").stdout); got != "5" {
		t.Errorf("add = %q", got)
	}
	c.ok("down", name)

	for _, bad := range []struct{ src, msg string }{
		{url + "#v9:envs/calc", `no branch, tag or commit "v9"`},
		{url + "#v1:envs/nope", "has no directory envs/nope"},
		{url + "#v1:envs", "no env.py in envs"},
	} {
		r := c.fails(ExitUsage, "build", bad.src, "-t", tag)
		if !strings.Contains(r.stderr, bad.msg) {
			t.Errorf("build %s: stderr %q, want %q", bad.src, r.stderr, bad.msg)
		}
	}
}
