package state

import (
	"context"
	"fmt"
	"path/filepath"
)

// NextCounter atomically increments the round-robin counter of the environment called name and
// returns its value before the increment: 0, 1, 2, ... across all processes using this state
// directory, with no value returned twice. It is how round_robin balancing holds across separate
// `rfenv call` processes.
//
// The counter is 8 bytes (little-endian) in counters/<name>, apart from state.json so that a call
// never rewrites the state file. An increment is open + flock + pread + pwrite + close (a few
// microseconds); it is not fsynced, since losing a count in a crash only shifts the rotation.
// The file is created on first use and deleted when Update removes the environment. Waiting for
// another process's lock (held for microseconds) honours ctx.
func (s *Store) NextCounter(ctx context.Context, name string) (uint64, error) {
	if err := ValidateName(name); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p := s.counterPath(name)
	v, err := incrCounter(ctx, p, func() error {
		if _, err := mkdirPrivate(s.dir); err != nil {
			return err
		}
		_, err := mkdirPrivate(filepath.Dir(p))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("round-robin counter %s: %w", p, err)
	}
	return v, nil
}

func (s *Store) counterPath(name string) string {
	return filepath.Join(s.dir, countersDir, name)
}
