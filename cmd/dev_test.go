package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDerivedName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"./environments/Affine", "affine"},
		{"/x/my env_v2/", "my-env_v2"},
		{"git@github.com:org/envs.git#v1:environments/web", "web"},
		{"https://host/org/Calc.git", "calc"},
		{"file:///srv/repo.git#main", "repo"},
		{"/", "env"},
	} {
		if got := derivedName(tc.in); got != tc.want {
			t.Errorf("derivedName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestNewCommandsUsageErrors: the flag and argument checks of dev, validate and up --build answer
// with exit 2 before any daemon is contacted (DOCKER_HOST points nowhere).
func TestNewCommandsUsageErrors(t *testing.T) {
	envDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(envDir, "env.py"), []byte("class Actor: pass\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, t.TempDir())
	c.env["DOCKER_HOST"] = "tcp://192.0.2.1:2375"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dev", envDir}, "local Docker daemon only"},
		{[]string{"dev", envDir, "--host", "ssh://gpu-box"}, "local Docker daemon only"},
		{[]string{"dev", "git@host:org/r.git"}, "not a git URL"},
		{[]string{"dev"}, "one environment directory"},
		{[]string{"up", "--build", envDir, "some:image"}, "no image with --build"},
		{[]string{"up"}, "one image"},
		{[]string{"validate", "e", "m"}, "nothing varies"},
		{[]string{"validate", "e", "m", "--vary", "task_id=3..1"}, "empty"},
		{[]string{"validate", "e", "m", "--vary", "task_id=1..2", "--arg", "task_id=1"}, "both varied"},
		{[]string{"validate", "e", "m", "--vary", "task_id=1..2", "--repeats", "1"}, "at least 2"},
		{[]string{"validate", "e"}, "an environment name and a method"},
		{[]string{"build", "file:///x.git#v1:../up", "-t", "x"}, "leaves the repository"},
	} {
		r := c.run(tc.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("rfenv %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
}
