package validate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Attempt is one call of the method for an input.
type Attempt struct {
	Replica    int             `json:"replica"`          // the replica that answered (-1 if unknown)
	Output     json.RawMessage `json:"output,omitempty"` // the method's result
	Error      string          `json:"error,omitempty"`  // set when the call failed
	DurationMs float64         `json:"duration_ms"`
}

// Verdict of one input.
const (
	Consistent   = "consistent"   // both attempts gave the same (compared) output
	Inconsistent = "inconsistent" // they differed
	Failed       = "failed"       // an attempt failed, or the compared field was missing
)

// Result is one input's outcome, as written to its file.
type Result struct {
	Input    Input     `json:"input"`
	Attempts []Attempt `json:"attempts"`
	Verdict  string    `json:"verdict"`
	// Reason says why an input is not consistent (which field differs, which call failed).
	Reason string `json:"reason,omitempty"`
	// Fingerprint is a hash of the compared value (the first attempt's), for the diversity count.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Judge compares an input's attempts. field, when set, is a dot path ("prompt", "task.text") into
// the output: only that value is compared. Outputs are compared as JSON values (key order and
// number spelling do not matter).
func Judge(in Input, attempts []Attempt, field string) Result {
	r := Result{Input: in, Attempts: attempts}
	var first []byte
	for i, a := range attempts {
		if a.Error != "" {
			r.Verdict, r.Reason = Failed, fmt.Sprintf("call %d failed: %s", i+1, a.Error)
			return r
		}
		v, err := Extract(a.Output, field)
		if err != nil {
			r.Verdict, r.Reason = Failed, fmt.Sprintf("call %d: %v", i+1, err)
			return r
		}
		c, err := Canonical(v)
		if err != nil {
			r.Verdict, r.Reason = Failed, fmt.Sprintf("call %d: %v", i+1, err)
			return r
		}
		if i == 0 {
			first = c
			sum := sha256.Sum256(c)
			r.Fingerprint = hex.EncodeToString(sum[:8])
			continue
		}
		if !bytes.Equal(first, c) {
			r.Verdict = Inconsistent
			r.Reason = fmt.Sprintf("call %d differs from call 1", i+1)
			if p := firstDifference(attempts[0].Output, a.Output, field); p != "" {
				r.Reason += " at " + p
			}
			return r
		}
	}
	r.Verdict = Consistent
	return r
}

// Extract returns the value at a dot path in a JSON document ("" = the whole document). Array
// elements are addressed by index: "items.0.text".
func Extract(doc json.RawMessage, field string) (json.RawMessage, error) {
	if field == "" {
		return doc, nil
	}
	cur := doc
	for _, key := range strings.Split(field, ".") {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(cur, &obj); err == nil {
			v, ok := obj[key]
			if !ok {
				return nil, fmt.Errorf("the output has no field %q (of %q)", key, field)
			}
			cur = v
			continue
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(cur, &arr); err == nil {
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(arr) {
				return nil, fmt.Errorf("the output has no element %q (of %q) in a list of %d", key, field, len(arr))
			}
			cur = arr[i]
			continue
		}
		return nil, fmt.Errorf("the output has no field %q (of %q): it is not an object", key, field)
	}
	return cur, nil
}

// Canonical re-encodes a JSON value with sorted object keys and numbers as written, so that equal
// values compare equal byte for byte.
func Canonical(v json.RawMessage) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return nil, fmt.Errorf("the output is not JSON: %v", err)
	}
	return json.Marshal(normalizeNumbers(x)) // encoding/json sorts map keys
}

// normalizeNumbers makes 1.0 and 1 the same value: JSON does not distinguish them, and Python's
// json writes floats with a trailing .0.
func normalizeNumbers(x any) any {
	switch t := x.(type) {
	case json.Number:
		if f, err := t.Float64(); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return string(t)
	case map[string]any:
		for k, v := range t {
			t[k] = normalizeNumbers(v)
		}
	case []any:
		for i, v := range t {
			t[i] = normalizeNumbers(v)
		}
	}
	return x
}

// firstDifference is the dot path of the first place two documents differ ("" when it cannot
// tell), so that a report says "differs at prompt" instead of dumping both outputs.
func firstDifference(a, b json.RawMessage, base string) string {
	va, err1 := Extract(a, base)
	vb, err2 := Extract(b, base)
	if err1 != nil || err2 != nil {
		return ""
	}
	var x, y any
	if json.Unmarshal(va, &x) != nil || json.Unmarshal(vb, &y) != nil {
		return ""
	}
	p := diffPath(x, y, base)
	if p == "" {
		p = "the top level"
	}
	return p
}

func diffPath(x, y any, path string) string {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch tx := x.(type) {
	case map[string]any:
		ty, ok := y.(map[string]any)
		if !ok {
			return path
		}
		for _, k := range sortedKeys(tx, ty) {
			vx, okx := tx[k]
			vy, oky := ty[k]
			if okx != oky {
				return join(k)
			}
			if !jsonEqual(vx, vy) {
				return diffPath(vx, vy, join(k))
			}
		}
	case []any:
		ty, ok := y.([]any)
		if !ok || len(tx) != len(ty) {
			return path
		}
		for i := range tx {
			if !jsonEqual(tx[i], ty[i]) {
				return diffPath(tx[i], ty[i], join(strconv.Itoa(i)))
			}
		}
	}
	return path
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func sortedKeys(a, b map[string]any) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range []map[string]any{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}
