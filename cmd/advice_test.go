package cmd

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// TestFlagAdvice: the library's conflict speaks of configurations; the CLI adds its flag, keeping the
// error's kind (exit 5) and chain.
func TestFlagAdvice(t *testing.T) {
	lib := fmt.Errorf("up: %w", &rfenv.ConfigConflictError{Env: "calc", Replicas: []string{"calc-0"}})
	if strings.Contains(lib.Error(), "--") {
		t.Fatalf("library error names a flag: %v", lib)
	}
	got := withFlagAdvice(lib)
	if !strings.Contains(got.Error(), "--force-recreate") || !strings.Contains(got.Error(), "rfenv down calc") {
		t.Errorf("advice missing: %v", got)
	}
	if ExitCode(got) != ExitConflict || !errors.Is(got, errs.Conflict) {
		t.Errorf("exit code %d, want %d", ExitCode(got), ExitConflict)
	}
	if other := errs.New(errs.Infra, "boom"); withFlagAdvice(other) != other {
		t.Errorf("an unrelated error changed")
	}
}

// TestPoolErrorAdvice: the pool's errors name its options; the CLI names the flags, and for replicas
// with no route, the transport that reaches them.
func TestPoolErrorAdvice(t *testing.T) {
	lost := &pool.ReplicaLostError{Method: "add", Name: "replica 0", Err: errors.New("EOF")}
	if got := withFlagAdvice(lost); !strings.Contains(got.Error(), "pass --retries N") || strings.Contains(got.Error(), "set Retries") || !errors.Is(got, errs.Infra) {
		t.Errorf("lost call: %v", got)
	}
	none := &pool.NoReplicaError{Env: "calc", Method: "add", Reasons: []string{"replica 0: refused"}}
	if got := withFlagAdvice(none).Error(); !strings.Contains(got, "rfenv stats calc") || strings.Contains(got, "--transport") {
		t.Errorf("no replica: %v", got)
	}
	none.NoRoute = true
	if got := withFlagAdvice(none); !strings.Contains(got.Error(), "--transport auto") || ExitCode(got) != ExitInfra {
		t.Errorf("no route: %v", got)
	}
}
