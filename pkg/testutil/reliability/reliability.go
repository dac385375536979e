// Package reliability records what the hardening tests established, one row per fault or bad input:
// the area, the fault, what rfenv did and what was lost. When RFENV_RELIABILITY_OUT names a file, the
// rows of passing tests are appended to it as JSON lines; `make reliability` collates them into
// RELIABILITY.md (see the collate command). Without the variable, Record only checks its arguments.
package reliability

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// EnvOut is the environment variable naming the JSON-lines file rows are appended to.
const EnvOut = "RFENV_RELIABILITY_OUT"

// Nothing is what a row's Lost says when nothing was lost; every row must say it.
const Nothing = "nothing"

// Areas, in the order RELIABILITY.md lists them.
const (
	Faults      = "faults"
	Concurrency = "concurrency"
	BadInput    = "bad input"
	Security    = "security"
)

var areaOrder = []string{Faults, Concurrency, BadInput, Security}

// Row is one line of RELIABILITY.md.
type Row struct {
	Area  string `json:"area"`
	Fault string `json:"fault"`
	Did   string `json:"did"`
	Lost  string `json:"lost"`
	Test  string `json:"test"`
}

var mu sync.Mutex

// Record notes that the running test established how rfenv handles fault: what it did, and what was
// lost (which must be Nothing, else the test fails). The row is written when the test ends, and only
// if it passed, so the table lists only what a green run verified.
func Record(t testing.TB, area, fault, did, lost string) {
	t.Helper()
	if !slices.Contains(areaOrder, area) {
		t.Errorf("reliability.Record: unknown area %q (use one of %v)", area, areaOrder)
		return
	}
	if fault == "" || did == "" {
		t.Errorf("reliability.Record: fault and what rfenv did must be described")
		return
	}
	if lost != Nothing {
		t.Errorf("%s: %s lost %s", area, fault, lost)
		return
	}
	row := Row{Area: area, Fault: fault, Did: did, Lost: lost, Test: t.Name()}
	path := os.Getenv(EnvOut)
	if path == "" {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if _, ok := pending[t]; !ok {
		t.Cleanup(func() {
			mu.Lock()
			rows := pending[t]
			delete(pending, t)
			mu.Unlock()
			if t.Failed() {
				return
			}
			if err := appendRows(path, rows); err != nil {
				t.Errorf("reliability: %v", err)
			}
		})
	}
	pending[t] = append(pending[t], row)
}

// pending holds each running test's rows until it ends, in the order it recorded them.
var pending = map[testing.TB][]Row{}

func appendRows(path string, rows []Row) error {
	var data []byte
	for _, row := range rows {
		line, err := json.Marshal(row)
		if err != nil {
			return err
		}
		data = append(append(data, line...), '\n')
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	// One write: O_APPEND keeps the lines of parallel tests and test binaries apart.
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Read parses JSON lines of rows. A later row for the same test and fault replaces an earlier one,
// so appending several runs to one file keeps the latest.
func Read(r io.Reader) ([]Row, error) {
	var rows []Row
	index := map[[2]string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var row Row
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		key := [2]string{row.Test, row.Fault}
		if i, ok := index[key]; ok {
			rows[i] = row
			continue
		}
		index[key] = len(rows)
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// Check fails on a row that lost something or lacks a field.
func Check(rows []Row) error {
	if len(rows) == 0 {
		return fmt.Errorf("no rows: did the tests run with %s set?", EnvOut)
	}
	for _, r := range rows {
		if r.Lost != Nothing {
			return fmt.Errorf("%s (%s): lost %q", r.Fault, r.Test, r.Lost)
		}
		if r.Area == "" || r.Fault == "" || r.Did == "" || r.Test == "" {
			return fmt.Errorf("incomplete row %+v", r)
		}
	}
	return nil
}

// Sort orders rows by area (faults, concurrency, bad input, security), keeping within an area the
// order in which they were recorded (the tests' order in their files, when run one at a time).
func Sort(rows []Row) {
	rank := func(a string) int {
		if i := slices.Index(areaOrder, a); i >= 0 {
			return i
		}
		return len(areaOrder)
	}
	slices.SortStableFunc(rows, func(a, b Row) int { return rank(a.Area) - rank(b.Area) })
}

// Markdown renders RELIABILITY.md.
func Markdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("# rfenv reliability\n\n")
	b.WriteString("What rfenv does under faults, concurrency, bad input and attacks, as established by the end-to-end\n")
	b.WriteString("hardening tests on a real Docker daemon (`cmd/hardening_*_test.go`). Each row is written by a test\n")
	b.WriteString("that passed; figures are from the run that generated this file (2-core machine). Regenerate with\n")
	b.WriteString("`make reliability`; do not edit by hand.\n\n")
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.Area]++
	}
	var parts []string
	for _, a := range areaOrder {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
		}
	}
	fmt.Fprintf(&b, "%d rows: %s. In every row nothing was lost.\n\n", len(rows), strings.Join(parts, ", "))
	b.WriteString("| area | fault or bad input | what rfenv did | what was lost | test |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s` |\n", cell(r.Area), cell(r.Fault), cell(r.Did), cell(r.Lost), r.Test)
	}
	return b.String()
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
