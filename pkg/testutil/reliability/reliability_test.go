package reliability

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSortMarkdown(t *testing.T) {
	in := strings.Join([]string{
		`{"area":"security","fault":"f1","did":"d1","lost":"nothing","test":"TestB"}`,
		``,
		`{"area":"faults","fault":"a | b","did":"old","lost":"nothing","test":"TestA"}`,
		`{"area":"faults","fault":"a | b","did":"new","lost":"nothing","test":"TestA"}`,
		`{"area":"bad input","fault":"f2","did":"d2","lost":"nothing","test":"TestC"}`,
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
	md := Markdown(rows)
	if !strings.Contains(md, `| faults | a \| b | new | nothing | `+"`TestA`"+` |`) || !strings.Contains(md, "3 rows: 1 faults, 1 bad input, 1 security") {
		t.Errorf("markdown:\n%s", md)
	}
	if err := Check([]Row{{Area: Faults, Fault: "f", Did: "d", Lost: "one call", Test: "T"}}); err == nil {
		t.Error("a row that lost something must fail the check")
	}
	if _, err := Read(strings.NewReader("{nope")); err == nil {
		t.Error("a malformed line must be an error")
	}
}

func TestRecordWritesPassingTestsInOrder(t *testing.T) {
	out := filepath.Join(t.TempDir(), "rows.jsonl")
	t.Setenv(EnvOut, out)
	t.Run("inner", func(t *testing.T) {
		Record(t, Faults, "first", "did 1", Nothing)
		Record(t, Faults, "second", "did 2", Nothing)
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
		t.Errorf("rows = %+v", rows)
	}
}
