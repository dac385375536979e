package host

import (
	"errors"
	"testing"

	"github.com/rfenv/rfenv/pkg/errs"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		kind Kind
		raw  string
	}{
		{"", Local, "localhost"},
		{"localhost", Local, "localhost"},
		{"unix:///var/run/docker.sock", Unix, "unix:///var/run/docker.sock"},
		{"ssh://gpu1", SSH, "ssh://gpu1"},
		{"ssh://root@10.0.0.5:2222", SSH, "ssh://root@10.0.0.5:2222"},
		{"ssh://me@[::1]:22/run/docker.sock", SSH, "ssh://me@[::1]:22/run/docker.sock"},
	}
	for _, c := range cases {
		s, err := Parse(c.in)
		if err != nil || s.Kind != c.kind || s.Raw != c.raw {
			t.Errorf("Parse(%q) = %+v, %v", c.in, s, err)
		}
	}
	for _, bad := range []string{"tcp://x:2375", "unix://relative.sock", "ssh://", "ssh://u:pw@h", "ssh://h?x=1", "gpu1"} {
		if _, err := Parse(bad); !errors.Is(err, errs.Usage) {
			t.Errorf("Parse(%q) = %v, want a usage error", bad, err)
		}
	}
}

func TestParseAllAndPlace(t *testing.T) {
	specs, err := ParseAll([]string{"localhost", "ssh://a", "ssh://b"})
	if err != nil {
		t.Fatal(err)
	}
	got := Place(5, specs)
	want := []string{"localhost", "ssh://a", "ssh://b", "localhost", "ssh://a"}
	for i := range want {
		if got[i].Raw != want[i] {
			t.Errorf("replica %d on %s, want %s", i, got[i].Raw, want[i])
		}
	}
	if _, err := ParseAll([]string{"ssh://a", "ssh://a"}); err == nil {
		t.Error("duplicate host accepted")
	}
	if d, _ := ParseAll(nil); len(d) != 1 || d[0].Kind != Local {
		t.Errorf("default hosts = %+v", d)
	}
}
