package callargs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfenv/rfenv/pkg/errs"
)

func TestValue(t *testing.T) {
	cases := []struct {
		in    string
		force bool
		want  string
	}{
		{"5", false, `5`},
		{"true", false, `true`},
		{"[1,2]", false, `[1,2]`},
		{`{"a":1}`, false, `{"a":1}`},
		{"sat", false, `"sat"`},
		{"", false, `""`},
		{"5", true, `"5"`},
		{" 7 ", false, `7`},
		{`"quoted"`, false, `"quoted"`},
		{"1e400x", false, `"1e400x"`},
	}
	for _, c := range cases {
		if got := string(Value(c.in, c.force)); got != c.want {
			t.Errorf("Value(%q,%v) = %s, want %s", c.in, c.force, got, c.want)
		}
	}
}

func TestParseMerges(t *testing.T) {
	a, err := Parse(Input{Arg: []string{"n=5", "task=sat"}, ArgStr: []string{"id=007"}, ArgJSON: `{"extra":[1]}`})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"n": `5`, "task": `"sat"`, "id": `"007"`, "extra": `[1]`}
	for k, v := range want {
		if string(a.Kwargs[k]) != v {
			t.Errorf("kwargs[%s] = %s, want %s", k, a.Kwargs[k], v)
		}
	}
	if len(a.Args) != 0 {
		t.Errorf("args = %v, want none", a.Args)
	}
}

func TestParsePositionalAndSources(t *testing.T) {
	a, err := Parse(Input{ArgJSON: "-", Stdin: strings.NewReader(" [1, \"x\"] \n")})
	if err != nil || len(a.Args) != 2 || string(a.Args[1]) != `"x"` {
		t.Fatalf("stdin array: %v %v", a, err)
	}
	p := filepath.Join(t.TempDir(), "a.json")
	os.WriteFile(p, []byte(`{"k": "v"}`), 0o600)
	a, err = Parse(Input{ArgJSON: "@" + p})
	if err != nil || string(a.Kwargs["k"]) != `"v"` {
		t.Fatalf("@file: %v %v", a, err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		in   Input
		want string
	}{
		{Input{Arg: []string{"novalue"}}, "expected KEY=VALUE"},
		{Input{Arg: []string{"=5"}}, "expected KEY=VALUE"},
		{Input{Arg: []string{"a=1"}, ArgStr: []string{"a=2"}}, `"a" given twice`},
		{Input{Arg: []string{"a=1"}, ArgJSON: `{"a":2}`}, `"a" given twice`},
		{Input{ArgJSON: `{"a":`}, "not valid JSON"},
		{Input{ArgJSON: `nope`}, "not valid JSON"},
		{Input{ArgJSON: `42`}, "must be a JSON object"},
		{Input{ArgJSON: ``}, ""}, // empty flag means no --args-json
		{Input{ArgJSON: `@/nonexistent/x.json`}, "no such file"},
		{Input{ArgJSON: "-"}, "no standard input"},
	}
	for _, c := range cases {
		_, err := Parse(c.in)
		if c.want == "" {
			if err != nil {
				t.Errorf("%+v: unexpected error %v", c.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want it to contain %q", c.in, err, c.want)
			continue
		}
		if !errors.Is(err, errs.Usage) {
			t.Errorf("%+v: error %v is not a usage error", c.in, err)
		}
	}
}
