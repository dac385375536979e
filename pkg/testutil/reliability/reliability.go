// Package reliability records what the hardening tests established, one row per fault or bad input:
// the area, the fault, what rfenv did, and the calls it accounted for (sent, answered, executed by the
// containers' own counts), from which what was lost is derived; rows that make no calls say so and
// what they checked instead. When RFENV_RELIABILITY_OUT names a file, the
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
	// Calls is what the test measured; the "lost" column is derived from it.
	Calls Accounting `json:"calls"`
	Test  string     `json:"test"`
}

var mu sync.Mutex

// Record notes that the running test established how rfenv handles fault: what it did, and the calls
// it accounted for. The test fails when the accounting is malformed or anything was lost (a call
// unanswered, or executed twice). The row is written when the test ends, and only if it passed, so
// the table lists only what a green run verified.
func Record(t testing.TB, area, fault, did string, calls Accounting) {
	t.Helper()
	if !slices.Contains(areaOrder, area) {
		t.Errorf("reliability.Record: unknown area %q (use one of %v)", area, areaOrder)
		return
	}
	if fault == "" || did == "" {
		t.Errorf("reliability.Record: fault and what rfenv did must be described")
		return
	}
	if err := calls.Valid(); err != nil {
		t.Errorf("reliability.Record %q: %v", fault, err)
		return
	}
	if calls.Lost() > 0 {
		t.Errorf("%s: %s lost calls: %s", area, fault, calls)
		return
	}
	row := Row{Area: area, Fault: fault, Did: did, Calls: calls, Test: t.Name()}
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

// Check fails on a row that lacks a field, whose accounting is malformed, or that lost calls (derived
// again from its counts, so a hand-edited line cannot claim otherwise).
func Check(rows []Row) error {
	if len(rows) == 0 {
		return fmt.Errorf("no rows: did the tests run with %s set?", EnvOut)
	}
	for _, r := range rows {
		if err := r.Calls.Valid(); err != nil {
			return fmt.Errorf("%s (%s): %v", r.Fault, r.Test, err)
		}
		if r.Calls.Lost() > 0 {
			return fmt.Errorf("%s (%s): %s", r.Fault, r.Test, r.Calls)
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

// Stamp says which code a table was measured on, when and where.
type Stamp struct {
	Commit  string // git rev-parse HEAD
	Date    string // UTC
	Machine string // cores, kernel, Docker version
}

// Markdown renders RELIABILITY.md.
func Markdown(rows []Row, stamp Stamp) string {
	var b strings.Builder
	b.WriteString("# rfenv reliability\n\n")
	b.WriteString("What rfenv does under faults, concurrency, bad input and attacks, as established by the end-to-end\n")
	b.WriteString("hardening tests on a real Docker daemon (`cmd/hardening_*_test.go`). Each row is written by a test\n")
	b.WriteString("that passed; figures are from the run that generated this file. Regenerate with `make reliability`;\n")
	b.WriteString("do not edit by hand.\n\n")
	b.WriteString("The last column is derived from what the test counted: calls **sent**; **answered** (a result or a\n")
	b.WriteString("clear error); **executed**, by the containers' own count (the shim's `/stats` `requests`, summed over\n")
	b.WriteString("the replicas as its change across the test: every /call the server answered or abandoned, including\n")
	b.WriteString("ones it refused without running the method, such as a 401 or a 400 for arguments that do not bind;\n")
	b.WriteString("a call refused before any request, or a body refused from its Content-Length, leaves it unchanged;\n")
	b.WriteString("a call in a container killed under it is uncounted, as its counter died with it). Lost = sent − answered,\n")
	b.WriteString("plus calls executed more often than sent; a row that lost anything fails its test. Rows that make no\n")
	b.WriteString("calls say so, and what was checked instead.\n\n")
	fmt.Fprintf(&b, "Measured on commit `%s`, %s, on %s.\n\n", orUnknown(stamp.Commit), orUnknown(stamp.Date), orUnknown(stamp.Machine))
	counts := map[string]int{}
	var sent, answered, executed, noCalls, lost int
	for _, r := range rows {
		counts[r.Area]++
		if r.Calls.NoCalls != "" {
			noCalls++
		}
		sent, answered, executed, lost = sent+r.Calls.Sent, answered+r.Calls.Answered, executed+r.Calls.Executed, lost+r.Calls.Lost()
	}
	var parts []string
	for _, a := range areaOrder {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
		}
	}
	fmt.Fprintf(&b, "%d rows: %s. %d calls sent, %d answered, %d executed by the containers' counts; %d lost. %d rows make no calls.\n\n",
		len(rows), strings.Join(parts, ", "), sent, answered, executed, lost, noCalls)
	b.WriteString("| area | fault or bad input | what rfenv did | what was lost | test |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s` |\n", cell(r.Area), cell(r.Fault), cell(r.Did), cell(r.Calls.String()), r.Test)
	}
	return b.String()
}

func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(not given)"
	}
	return s
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
