package cmd

import (
	"errors"

	"github.com/rfenv/rfenv/cmd/report"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// withFlagAdvice adds to a library error the flags that get past it: the library speaks in its own
// terms (options), the CLI knows its flags.
func withFlagAdvice(err error) error {
	var conflict *rfenv.ConfigConflictError
	if errors.As(err, &conflict) {
		return report.Advised(err, "; pass --force-recreate to replace its replicas, or `rfenv down "+conflict.Env+"` first")
	}
	return report.PoolAdvice(err)
}
