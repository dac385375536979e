package reliability

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSortMarkdown(t *testing.T) {
	in := strings.Join([]string{
		`{"area":"security","fault":"f1","did":"d1","calls":{"no_calls":"the state entry"},"test":"TestB"}`,
		``,
		`{"area":"faults","fault":"a | b","did":"old","calls":{"sent":2,"answered":2,"executed":2,"counted_by":"/stats"},"test":"TestA"}`,
		`{"area":"faults","fault":"a | b","did":"new","calls":{"sent":3,"answered":3,"executed":3,"counted_by":"/stats"},"test":"TestA"}`,
		`{"area":"bad input","fault":"f2","did":"d2","calls":{"sent":1,"answered":1,"executed":0,"counted_by":"/stats"},"test":"TestC"}`,
	}, "\n")
	rows, err := Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[1].Did != "new" {
		t.Fatalf("rows = %+v: a later row of the same test and fault should replace the earlier", rows)
	}
	if err := Check(rows); err != nil {
		t.Fatal(err)
	}
	Sort(rows)
	if rows[0].Area != Faults || rows[1].Area != BadInput || rows[2].Area != Security {
		t.Errorf("order = %+v", rows)
	}
	md := Markdown(rows, Stamp{Commit: "abc123", Date: "2026-12-01 15:00 UTC", Machine: "2 cores"})
	for _, want := range []string{
		`| faults | a \| b | new | nothing: 3 sent, 3 answered, 3 executed by /stats | ` + "`TestA`" + ` |`,
		`| security | f1 | d1 | no calls made; checked the state entry | ` + "`TestB`" + ` |`,
		"3 rows: 1 faults, 1 bad input, 1 security. 4 calls sent, 4 answered, 3 executed by the containers' counts; 0 lost. 1 rows make no calls.",
		"Measured on commit `abc123`, 2026-12-01 15:00 UTC, on 2 cores.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if _, err := Read(strings.NewReader("{nope")); err == nil {
		t.Error("a malformed line must be an error")
	}
}

// TestAccounting: what was lost is derived from the counts (unanswered calls, plus calls executed
// more often than sent), and malformed accountings are refused.
func TestAccounting(t *testing.T) {
	for _, tc := range []struct {
		name       string
		a          Accounting
		lost, dup  int
		invalid    bool
		cellPrefix string
	}{
		{name: "all answered and run once", a: Calls(8, 8, 8, "/stats"), cellPrefix: "nothing: 8 sent, 8 answered, 8 executed by /stats"},
		{name: "refused before any request", a: Calls(1, 1, 0, "/stats"), cellPrefix: "nothing: 1 sent, 1 answered, 0 executed"},
		{name: "two unanswered", a: Calls(10, 8, 10, "/stats"), lost: 2, cellPrefix: "LOST 2 (2 unanswered)"},
		{name: "one executed twice", a: Calls(10, 10, 11, "/stats"), lost: 1, dup: 1, cellPrefix: "LOST 1 (1 executed twice)"},
		{name: "both", a: Calls(10, 9, 12, "/stats"), lost: 3, dup: 2, cellPrefix: "LOST 3 (1 unanswered, 2 executed twice)"},
		{name: "a call in a killed container is not a duplicate check's", a: Calls(11, 11, 10, "/stats").WithUncounted(1), cellPrefix: "nothing: 11 sent, 11 answered, 10 executed by /stats (+1 in a killed container, uncounted)"},
		{name: "a duplicate beside a killed container", a: Calls(11, 11, 11, "/stats").WithUncounted(1), lost: 1, dup: 1},
		{name: "no calls", a: NoCalls("the containers"), cellPrefix: "no calls made; checked the containers"},
		{name: "no accounting at all", a: Accounting{}, invalid: true},
		{name: "both kinds", a: Accounting{Sent: 1, Answered: 1, CountedBy: "x", NoCalls: "y"}, invalid: true},
		{name: "more answered than sent", a: Calls(1, 2, 1, "x"), invalid: true},
		{name: "no source for the executed count", a: Calls(1, 1, 1, ""), invalid: true},
		{name: "negative", a: Calls(1, -1, 1, "x"), invalid: true},
		{name: "more uncounted than sent", a: Calls(1, 1, 0, "x").WithUncounted(2), invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.a.Valid(); (err != nil) != tc.invalid {
				t.Fatalf("Valid() = %v, want invalid %v", err, tc.invalid)
			}
			if tc.invalid {
				if err := Check([]Row{{Area: Faults, Fault: "f", Did: "d", Calls: tc.a, Test: "T"}}); err == nil {
					t.Error("Check passed a malformed accounting")
				}
				return
			}
			if got := tc.a.Lost(); got != tc.lost {
				t.Errorf("Lost() = %d, want %d", got, tc.lost)
			}
			if got := tc.a.Twice(); got != tc.dup {
				t.Errorf("Twice() = %d, want %d", got, tc.dup)
			}
			if tc.cellPrefix != "" && !strings.HasPrefix(tc.a.String(), tc.cellPrefix) {
				t.Errorf("cell = %q, want it to start %q", tc.a.String(), tc.cellPrefix)
			}
			err := Check([]Row{{Area: Faults, Fault: "f", Did: "d", Calls: tc.a, Test: "T"}})
			if (err != nil) != (tc.lost > 0) {
				t.Errorf("Check = %v with %d lost", err, tc.lost)
			}
		})
	}
}

// fakeTB records failures without ending the real test, to see Record fail a test.
type fakeTB struct {
	testing.TB
	errors []string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Name() string                   { return "Fake" }
func (f *fakeTB) Errorf(format string, a ...any) { f.errors = append(f.errors, format) }

func TestRecordFailsTheTestWhenCallsWereLost(t *testing.T) {
	t.Setenv(EnvOut, "") // nothing is written; only the checks run
	for _, tc := range []struct {
		name string
		a    Accounting
		fail bool
	}{
		{"nothing lost", Calls(3, 3, 3, "/stats"), false},
		{"no calls", NoCalls("the state entry"), false},
		{"one unanswered", Calls(3, 2, 3, "/stats"), true},
		{"one executed twice", Calls(3, 3, 4, "/stats"), true},
		{"no accounting", Accounting{}, true},
	} {
		f := &fakeTB{TB: t}
		Record(f, Faults, "a fault", "what rfenv did", tc.a)
		if failed := len(f.errors) > 0; failed != tc.fail {
			t.Errorf("%s: Record failed the test: %v (%v), want %v", tc.name, failed, f.errors, tc.fail)
		}
	}
}

func TestRecordWritesPassingTestsInOrder(t *testing.T) {
	out := filepath.Join(t.TempDir(), "rows.jsonl")
	t.Setenv(EnvOut, out)
	t.Run("inner", func(t *testing.T) {
		Record(t, Faults, "first", "did 1", Calls(2, 2, 2, "/stats"))
		Record(t, Faults, "second", "did 2", NoCalls("the containers"))
	})
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := Read(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Fault != "first" || rows[1].Fault != "second" || rows[0].Test != "TestRecordWritesPassingTestsInOrder/inner" {
		t.Fatalf("rows = %+v", rows)
	}
	if rows[0].Calls != Calls(2, 2, 2, "/stats") || rows[1].Calls.NoCalls != "the containers" {
		t.Errorf("the accountings did not survive the file: %+v", rows)
	}
	if err := Check(rows); err != nil {
		t.Error(err)
	}
}
