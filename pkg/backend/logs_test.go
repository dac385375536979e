package backend

import (
	"strings"
	"testing"

	"github.com/rfenv/rfenv/pkg/state"
)

// recordWriter keeps each Write separately, to check that lines are never split across writes.
type recordWriter struct{ writes []string }

func (r *recordWriter) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func TestLineWriter(t *testing.T) {
	rec := &recordWriter{}
	lw := &LineWriter{Out: rec, Prefix: []byte("env-1 | ")}
	for _, chunk := range []string{"hel", "lo\nwor", "ld\n", "a\nb\nc", ""} {
		if n, err := lw.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if err := lw.Flush(); err != nil {
		t.Fatal(err)
	}
	want := []string{"env-1 | hello\n", "env-1 | world\n", "env-1 | a\nenv-1 | b\n", "env-1 | c\n"}
	if strings.Join(rec.writes, "|") != strings.Join(want, "|") {
		t.Errorf("writes = %q, want %q", rec.writes, want)
	}
	if err := lw.Flush(); err != nil || len(rec.writes) != len(want) {
		t.Errorf("a second flush wrote %q", rec.writes[len(want):])
	}

	// An unterminated line longer than the limit is written out rather than held forever.
	rec.writes = nil
	long := strings.Repeat("x", maxPartialLine)
	lw.Write([]byte(long))
	if len(rec.writes) != 1 || rec.writes[0] != "env-1 | "+long+"\n" {
		t.Errorf("a %d-byte partial line was not written whole (%d writes)", len(long), len(rec.writes))
	}
}

func TestSelectReplicas(t *testing.T) {
	rec := &state.Environment{Name: "env", Instances: []state.Instance{{Index: 0}, {Index: 1}, {Index: 2}}}
	all, err := SelectReplicas(rec, nil)
	if err != nil || len(all) != 3 {
		t.Fatalf("all replicas: %v, %v", all, err)
	}
	one, err := SelectReplicas(rec, []int{2})
	if err != nil || len(one) != 1 || one[0].Index != 2 {
		t.Fatalf("replica 2: %v, %v", one, err)
	}
	if _, err := SelectReplicas(rec, []int{5}); err == nil || !strings.Contains(err.Error(), "no replica 5") || !strings.Contains(err.Error(), "0, 1, 2") {
		t.Errorf("replica 5: %v", err)
	}
}
