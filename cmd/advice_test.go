package cmd

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rfenv/rfenv/pkg/errs"
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
