package build

import (
	"errors"
	"testing"

	"github.com/rfenv/rfenv/pkg/errs"
)

func TestIsGitURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"https://host/org/repo.git", true},
		{"HTTPS://host/org/repo.git#main", true},
		{"http://127.0.0.1:8080/r.git", true},
		{"ssh://git@host:2222/org/repo.git#v1:sub", true},
		{"git://127.0.0.1:9418/repo.git", true},
		{"git+ssh://host/repo", true},
		{"file:///srv/repo.git", true},
		{"git@github.com:org/repo.git#v1.0:environments/web", true},
		{"root@127.0.0.1:/srv/repo.git", true},
		{"./envs/calc", false},
		{"envs/calc", false},
		{"/abs/path", false},
		{".", false},
		{`C:\envs\calc`, false},
		{"name@version", false},
	} {
		if got := IsGitURL(tc.in); got != tc.want {
			t.Errorf("IsGitURL(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseGitSource(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    GitSource
		wantErr bool
	}{
		{in: "https://host/org/repo.git", want: GitSource{URL: "https://host/org/repo.git"}},
		{in: "https://host/org/repo.git#main", want: GitSource{URL: "https://host/org/repo.git", Ref: "main"}},
		{in: "https://host/org/repo.git#:sub/dir", want: GitSource{URL: "https://host/org/repo.git", Subdir: "sub/dir"}},
		{in: "git@host:org/repo.git#v1.0:environments/web", want: GitSource{URL: "git@host:org/repo.git", Ref: "v1.0", Subdir: "environments/web"}},
		{in: "ssh://git@host:2222/org/repo.git#abc1234:/x/./y/", want: GitSource{URL: "ssh://git@host:2222/org/repo.git", Ref: "abc1234", Subdir: "x/y"}},
		{in: "file:///srv/repo.git#refs/heads/dev:.", want: GitSource{URL: "file:///srv/repo.git", Ref: "refs/heads/dev"}},
		{in: "file:///srv/repo.git#main:../etc", wantErr: true},
		{in: "file:///srv/repo.git#--upload-pack=evil", wantErr: true},
		{in: "https://#main", wantErr: true},
		{in: "./local", wantErr: true},
	} {
		got, err := ParseGitSource(tc.in)
		if tc.wantErr {
			if err == nil || !errors.Is(err, errs.Usage) {
				t.Errorf("ParseGitSource(%q) = %+v, %v; want a usage error", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseGitSource(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestGitSourceHidesCredentials(t *testing.T) {
	g, err := ParseGitSource("https://user:s3cret@host/org/repo.git#main:sub")
	if err != nil {
		t.Fatal(err)
	}
	if s := g.String(); s != "https://user:xxxxx@host/org/repo.git#main:sub" {
		t.Errorf("String() = %q", s)
	}
	l := g.labels("0123")
	if l[LabelSourceURL] != "https://host/org/repo.git" || l[LabelSourceCommit] != "0123" || l[LabelSourceRef] != "main" || l[LabelSourceSubdir] != "sub" {
		t.Errorf("labels = %v", l)
	}
	if s := stripUserinfo("ssh://git@host/r.git"); s != "ssh://git@host/r.git" {
		t.Errorf("stripUserinfo kept %q", s)
	}
}
