// Package validate checks that an environment maps the same input to the same output (a task id
// gives the same task every time, on every replica) and different inputs to different outputs.
// It holds the pure logic: expanding the inputs, comparing outputs and summarising; the calls
// themselves are made by the caller (cmd/validate.go), through any function with Call's shape.
package validate

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
)

// MaxInputs bounds how many inputs one --vary may expand to, so that a typo such as 1..10000000
// fails at once instead of running for hours.
const MaxInputs = 100_000

// Vary is one varied argument: its name and the values it takes, in order.
type Vary struct {
	Name   string
	Values []any
}

// ParseVary reads NAME=A..B (integers, both ends included, A ≤ B) or NAME=V1,V2,… (each value JSON
// if it parses as JSON, else a string), e.g. task_id=1..100 or env=sat,abd.
func ParseVary(s string) (Vary, error) {
	name, spec, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" || spec == "" {
		return Vary{}, fmt.Errorf("--vary %q: expected NAME=FROM..TO or NAME=V1,V2,…", s)
	}
	if lo, hi, ok := strings.Cut(spec, ".."); ok {
		a, err1 := strconv.ParseInt(strings.TrimSpace(lo), 10, 64)
		b, err2 := strconv.ParseInt(strings.TrimSpace(hi), 10, 64)
		if err1 != nil || err2 != nil {
			return Vary{}, fmt.Errorf("--vary %q: a range takes integers, e.g. %s=1..100", s, name)
		}
		if a > b {
			return Vary{}, fmt.Errorf("--vary %q: the range is empty (%d > %d)", s, a, b)
		}
		if b-a+1 > MaxInputs {
			return Vary{}, fmt.Errorf("--vary %q: %d inputs is more than the limit of %d", s, b-a+1, MaxInputs)
		}
		v := Vary{Name: name}
		for i := a; i <= b; i++ {
			v.Values = append(v.Values, i)
		}
		return v, nil
	}
	v := Vary{Name: name}
	for _, part := range strings.Split(spec, ",") {
		v.Values = append(v.Values, scalar(strings.TrimSpace(part)))
	}
	if len(v.Values) > MaxInputs {
		return Vary{}, fmt.Errorf("--vary %q: %d inputs is more than the limit of %d", s, len(v.Values), MaxInputs)
	}
	return v, nil
}

// scalar is a value as typed on a command line: JSON when it parses (42, true, "x", [1]), else the
// text itself, so that env=sat needs no quotes.
func scalar(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err == nil {
		return v
	}
	return s
}

// Input is one set of keyword arguments to call the method with.
type Input struct {
	Index  int            `json:"index"` // 0-based position in the run
	Label  string         `json:"label"` // the varied values, e.g. "task_id=7"; names the output file
	Kwargs map[string]any `json:"kwargs"`
}

// Expand returns the inputs: the cross product of the varied values (the first --vary outermost),
// each merged over the fixed arguments. No vary gives one input, the fixed arguments alone.
func Expand(fixed map[string]any, vary []Vary) ([]Input, error) {
	total := 1
	for _, v := range vary {
		if _, clash := fixed[v.Name]; clash {
			return nil, fmt.Errorf("%s is both varied (--vary) and fixed (--arg): give it once", v.Name)
		}
		if len(v.Values) == 0 {
			return nil, fmt.Errorf("--vary %s has no values", v.Name)
		}
		total *= len(v.Values)
		if total > MaxInputs {
			return nil, fmt.Errorf("the --vary flags give more than %d inputs", MaxInputs)
		}
	}
	out := make([]Input, 0, total)
	for i := range total {
		kw := maps.Clone(fixed)
		if kw == nil {
			kw = map[string]any{}
		}
		var label []string
		rest := i
		for j := len(vary) - 1; j >= 0; j-- {
			v := vary[j]
			val := v.Values[rest%len(v.Values)]
			rest /= len(v.Values)
			kw[v.Name] = val
			label = append([]string{fmt.Sprintf("%s=%v", v.Name, val)}, label...)
		}
		l := strings.Join(label, ",")
		if l == "" {
			l = "input"
		}
		out = append(out, Input{Index: i, Label: l, Kwargs: kw})
	}
	return out, nil
}

// FileName is the input's result file in the output directory: its label with the characters a
// file name cannot hold replaced, prefixed by its index so that names stay unique and sorted.
func (in Input) FileName() string {
	var b strings.Builder
	for _, r := range in.Label {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '=', r == ',':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	name := b.String()
	if len(name) > 100 {
		name = name[:100]
	}
	return fmt.Sprintf("%05d_%s.json", in.Index, name)
}
