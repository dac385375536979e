package validate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestParseVary(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Vary
		wantErr string
	}{
		{in: "task_id=1..3", want: Vary{Name: "task_id", Values: []any{int64(1), int64(2), int64(3)}}},
		{in: "seed=-1..0", want: Vary{Name: "seed", Values: []any{int64(-1), int64(0)}}},
		{in: "env=sat,abd", want: Vary{Name: "env", Values: []any{"sat", "abd"}}},
		{in: `x=1,"1",true`, want: Vary{Name: "x", Values: []any{float64(1), "1", true}}},
		{in: "task_id=5..1", wantErr: "empty"},
		{in: "task_id=a..b", wantErr: "integers"},
		{in: "task_id=1..1000000", wantErr: "limit"},
		{in: "=1..2", wantErr: "expected NAME"},
		{in: "task_id", wantErr: "expected NAME"},
	} {
		got, err := ParseVary(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseVary(%q) = %v, %v; want error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseVary(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
}

func TestExpand(t *testing.T) {
	a, _ := ParseVary("a=1..2")
	b, _ := ParseVary("b=x,y")
	ins, err := Expand(map[string]any{"k": "v"}, []Vary{a, b})
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for i, in := range ins {
		if in.Index != i || in.Kwargs["k"] != "v" {
			t.Errorf("input %d: %+v", i, in)
		}
		labels = append(labels, in.Label)
	}
	if want := []string{"a=1,b=x", "a=1,b=y", "a=2,b=x", "a=2,b=y"}; !reflect.DeepEqual(labels, want) {
		t.Errorf("labels %v, want %v", labels, want)
	}
	if ins[3].Kwargs["a"] != int64(2) || ins[3].Kwargs["b"] != "y" {
		t.Errorf("last input %v", ins[3].Kwargs)
	}
	if one, _ := Expand(map[string]any{"k": 1}, nil); len(one) != 1 || one[0].Label != "input" {
		t.Errorf("no vary: %+v", one)
	}
	if _, err := Expand(map[string]any{"a": 1}, []Vary{a}); err == nil {
		t.Error("a name both varied and fixed was accepted")
	}
	if n := (Input{Index: 7, Label: "q=a/b c"}).FileName(); n != "00007_q=a_b_c.json" {
		t.Errorf("FileName %q", n)
	}
}

func ok(out string) Attempt { return Attempt{Output: json.RawMessage(out)} }

func TestJudge(t *testing.T) {
	in := Input{Label: "task_id=1"}
	for _, tc := range []struct {
		name     string
		a, b     Attempt
		field    string
		verdict  string
		reason   string
		sameHash bool
	}{
		{name: "equal", a: ok(`{"p":"x","n":1}`), b: ok(`{"n":1.0,"p":"x"}`), verdict: Consistent},
		{name: "differ", a: ok(`{"p":"x","meta":{"t":1}}`), b: ok(`{"p":"x","meta":{"t":2}}`), verdict: Inconsistent, reason: "at meta.t"},
		{name: "field equal, rest differs", a: ok(`{"prompt":"x","t":1}`), b: ok(`{"prompt":"x","t":2}`), field: "prompt", verdict: Consistent},
		{name: "field differs", a: ok(`{"prompt":"x"}`), b: ok(`{"prompt":"y"}`), field: "prompt", verdict: Inconsistent},
		{name: "nested field", a: ok(`{"task":{"items":[{"q":"a"}]}}`), b: ok(`{"task":{"items":[{"q":"b"}]}}`), field: "task.items.0.q", verdict: Inconsistent},
		{name: "missing field", a: ok(`{"other":1}`), b: ok(`{"other":1}`), field: "prompt", verdict: Failed, reason: `no field "prompt"`},
		{name: "call failed", a: ok(`1`), b: Attempt{Error: "ValueError: bad"}, verdict: Failed, reason: "call 2 failed: ValueError: bad"},
		{name: "list length", a: ok(`[1,2]`), b: ok(`[1,2,3]`), verdict: Inconsistent, reason: "the top level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Judge(in, []Attempt{tc.a, tc.b}, tc.field)
			if r.Verdict != tc.verdict || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("verdict %s (%s), want %s (%q)", r.Verdict, r.Reason, tc.verdict, tc.reason)
			}
			if tc.verdict != Failed && r.Fingerprint == "" {
				t.Error("no fingerprint")
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	mk := func(i int, out string, verdict string) Result {
		r := Judge(Input{Index: i, Label: fmt.Sprintf("id=%d", i)}, []Attempt{ok(out), ok(out)}, "")
		if verdict != "" {
			r.Verdict, r.Reason = verdict, "why"
		}
		return r
	}
	s := Summarize([]Result{mk(3, `"c"`, ""), mk(0, `"a"`, ""), mk(1, `"a"`, ""), mk(2, `"b"`, Inconsistent),
		{Input: Input{Index: 4, Label: "id=4"}, Verdict: Failed, Reason: "boom"}})
	if s.Inputs != 5 || s.Consistent != 3 || s.Inconsistent != 1 || s.Failed != 1 || s.OK {
		t.Errorf("counts %+v", s)
	}
	if s.Distinct != 3 || s.Diversity != 0.75 {
		t.Errorf("distinct %d diversity %v, want 3 and 0.75", s.Distinct, s.Diversity)
	}
	if !reflect.DeepEqual(s.Duplicates, [][]string{{"id=0", "id=1"}}) {
		t.Errorf("duplicates %v", s.Duplicates)
	}
	if len(s.Problems) != 2 || s.Problems[0].Label != "id=2" || s.Problems[1].Reason != "boom" {
		t.Errorf("problems %+v", s.Problems)
	}
	if all := Summarize([]Result{mk(0, `1`, ""), mk(1, `2`, "")}); !all.OK || all.Diversity != 1 {
		t.Errorf("all consistent: %+v", all)
	}
	if Summarize(nil).OK {
		t.Error("no inputs counted as OK")
	}
}

// TestRunSpreadsAttemptsOverReplicas checks the scheduling: two calls per input, on different
// replicas when there are several, results in input order, and a failing call recorded as such.
func TestRunSpreadsAttemptsOverReplicas(t *testing.T) {
	v, _ := ParseVary("task_id=1..10")
	ins, _ := Expand(nil, []Vary{v})
	var mu sync.Mutex
	seen := map[int64][]int{}
	call := func(_ context.Context, rep int, kw map[string]any) (json.RawMessage, error) {
		id := kw["task_id"].(int64)
		mu.Lock()
		seen[id] = append(seen[id], rep)
		mu.Unlock()
		if id == 7 {
			return nil, errors.New("boom")
		}
		return json.RawMessage(fmt.Sprintf(`{"task":%d,"replica":%d}`, id, rep)), nil
	}
	var progress []int
	res, err := Run(context.Background(), ins, call, RunOptions{Replicas: 3, Concurrency: 3, Field: "task",
		OnResult: func(done, total int, _ Result) { progress = append(progress, done) }})
	if err != nil {
		t.Fatal(err)
	}
	for id, reps := range seen {
		if len(reps) != 2 || reps[0] == reps[1] {
			t.Errorf("task %d called on replicas %v, want two different ones", id, reps)
		}
	}
	for i, r := range res {
		if r.Input.Index != i {
			t.Fatalf("result %d is input %d", i, r.Input.Index)
		}
	}
	if res[6].Verdict != Failed || res[0].Verdict != Consistent {
		t.Errorf("verdicts %s %s", res[6].Verdict, res[0].Verdict)
	}
	if len(progress) != 10 || progress[9] != 10 {
		t.Errorf("progress %v", progress)
	}

	// Without --field the replica number in the output makes every input inconsistent.
	res, _ = Run(context.Background(), ins[:3], call, RunOptions{Replicas: 2})
	for _, r := range res {
		if r.Verdict != Inconsistent {
			t.Errorf("%s: %s, want inconsistent", r.Input.Label, r.Verdict)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, ins, call, RunOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
}
