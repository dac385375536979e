// Package callargs turns command-line argument flags into a call's positional and keyword arguments.
package callargs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rfenv/rfenv/pkg/errs"
)

// Args are a method call's arguments as they go on the wire.
type Args struct {
	Args   []json.RawMessage          `json:"args"`
	Kwargs map[string]json.RawMessage `json:"kwargs"`
}

// Input is what the user gave on the command line.
type Input struct {
	Arg     []string // --arg k=v: v is JSON when it parses as JSON, else a string
	ArgStr  []string // --arg-str k=v: v is always a string
	ArgJSON string   // --args-json: an object (kwargs) or array (args); @file reads a file, - reads Stdin
	Stdin   io.Reader
}

// Parse combines the flags into Args. Keyword arguments from --arg and --arg-str are merged over those
// of --args-json; naming one key twice is an error, since one of the values would be lost silently.
func Parse(in Input) (Args, error) {
	out := Args{Args: []json.RawMessage{}, Kwargs: map[string]json.RawMessage{}}
	if in.ArgJSON != "" {
		raw, err := readArgJSON(in.ArgJSON, in.Stdin)
		if err != nil {
			return Args{}, err
		}
		if err := decodeArgJSON(raw, &out); err != nil {
			return Args{}, err
		}
	}
	seen := map[string]string{}
	for k := range out.Kwargs {
		seen[k] = "--args-json"
	}
	add := func(flag, kv string, always string) error {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return errs.New(errs.Usage, "%s %q: expected KEY=VALUE, e.g. %s n=5", flag, kv, flag)
		}
		if prev, dup := seen[k]; dup {
			return errs.New(errs.Usage, "argument %q given twice (%s and %s); give it once", k, prev, flag)
		}
		seen[k] = flag
		out.Kwargs[k] = Value(v, always == "string")
		return nil
	}
	for _, kv := range in.Arg {
		if err := add("--arg", kv, ""); err != nil {
			return Args{}, err
		}
	}
	for _, kv := range in.ArgStr {
		if err := add("--arg-str", kv, "string"); err != nil {
			return Args{}, err
		}
	}
	return out, nil
}

// Value encodes a command-line value: JSON when it parses as JSON (5, true, [1,2], {"a":1}, "x"),
// otherwise the text as a JSON string. forceString always gives a string.
func Value(v string, forceString bool) json.RawMessage {
	if !forceString && json.Valid([]byte(v)) {
		return json.RawMessage(bytes.TrimSpace([]byte(v)))
	}
	b, _ := json.Marshal(v) // marshalling a string cannot fail
	return b
}

func readArgJSON(spec string, stdin io.Reader) ([]byte, error) {
	switch {
	case spec == "-":
		if stdin == nil {
			return nil, errs.New(errs.Usage, "--args-json -: no standard input to read")
		}
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, errs.New(errs.Usage, "--args-json -: reading standard input: %v", err)
		}
		return b, nil
	case strings.HasPrefix(spec, "@"):
		b, err := os.ReadFile(spec[1:])
		if err != nil {
			return nil, errs.New(errs.Usage, "--args-json %s: %v", spec, err)
		}
		return b, nil
	default:
		return []byte(spec), nil
	}
}

func decodeArgJSON(raw []byte, out *Args) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return errs.New(errs.Usage, "--args-json is empty: give a JSON object of keyword arguments or an array of positional ones")
	}
	switch raw[0] {
	case '{':
		var kw map[string]json.RawMessage
		if err := json.Unmarshal(raw, &kw); err != nil {
			return errs.New(errs.Usage, "--args-json is not valid JSON: %v", describeJSONError(raw, err))
		}
		for k, v := range kw {
			out.Kwargs[k] = v
		}
	case '[':
		var a []json.RawMessage
		if err := json.Unmarshal(raw, &a); err != nil {
			return errs.New(errs.Usage, "--args-json is not valid JSON: %v", describeJSONError(raw, err))
		}
		out.Args = a
	default:
		if !json.Valid(raw) {
			return errs.New(errs.Usage, "--args-json is not valid JSON: %v", describeJSONError(raw, json.Unmarshal(raw, new(any))))
		}
		return errs.New(errs.Usage, "--args-json must be a JSON object (keyword arguments) or array (positional arguments), got %s", truncate(string(raw), 40))
	}
	return nil
}

// describeJSONError adds the position of a syntax error, which encoding/json reports only as an offset.
func describeJSONError(raw []byte, err error) error {
	var se *json.SyntaxError
	if ok := asSyntax(err, &se); ok {
		line := 1 + bytes.Count(raw[:min(int(se.Offset), len(raw))], []byte("\n"))
		return fmt.Errorf("%v (line %d, byte %d)", err, line, se.Offset)
	}
	return err
}

func asSyntax(err error, target **json.SyntaxError) bool {
	se, ok := err.(*json.SyntaxError)
	if ok {
		*target = se
	}
	return ok
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
