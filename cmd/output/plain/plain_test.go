package plain

import (
	"encoding/json"
	"testing"

	"github.com/rfenv/rfenv/cmd/iostreams"
)

func TestStatusLines(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	Error(ios, "no such method")
	Info(ios, false, "run with %s", "--verbose")
	Info(ios, true, "silenced")
	Success(ios, true, "silenced")
	Warn(ios, "kept when %s", "quiet")
	if got, want := errOut.String(), "error: no such method\n• run with --verbose\n! kept when quiet\n"; got != want {
		t.Errorf("without colour:\n%q\nwant\n%q", got, want)
	}
	errOut.Reset()
	ios.SetColor(true)
	Error(ios, "x")
	if got, want := errOut.String(), "\x1b[1;38;5;196merror:\x1b[0m x\n"; got != want {
		t.Errorf("with colour: %q, want %q", got, want)
	}
}

func TestJSON(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	if err := JSON(ios, json.RawMessage(`{"a": [1, 2]}`)); err != nil {
		t.Fatal(err)
	}
	if err := JSON(ios, map[string]int{"b": 3}); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "{\"a\":[1,2]}\n{\"b\":3}\n"; got != want {
		t.Errorf("piped: %q, want %q", got, want)
	}
	out.Reset()
	ios.SetTTY(true)
	if err := JSON(ios, json.RawMessage(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "{\n  \"a\": 1\n}\n"; got != want {
		t.Errorf("on a terminal: %q, want %q", got, want)
	}
	if err := JSON(ios, json.RawMessage(`{`)); err == nil {
		t.Error("malformed raw JSON was written without an error")
	}
}
