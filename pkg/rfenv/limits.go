package rfenv

import (
	"strconv"
	"time"

	"github.com/rfenv/rfenv/pkg/state"
)

// DefaultOverdueRestart is how long past its deadline a call may keep running before its replica
// restarts itself (UpOptions.OverdueRestart). A sync method cannot be cancelled, so without a limit a
// method that never returns would hold its thread, and its share of the replica, forever; five
// minutes leaves a method that merely ignores a short deadline the time to finish.
const DefaultOverdueRestart = 5 * time.Minute

// NoOverdueRestart, as UpOptions.OverdueRestart, turns the overdue restart off.
const NoOverdueRestart = time.Duration(-1)

// overdueRestart is the effective limit (0: off).
func overdueRestart(o UpOptions) time.Duration {
	switch {
	case o.OverdueRestart < 0:
		return 0
	case o.OverdueRestart == 0:
		return DefaultOverdueRestart
	}
	return o.OverdueRestart
}

// shimVars are the variables that configure the shim in every replica (shim protocol 2).
func shimVars(o UpOptions) []string {
	return []string{"RFENV_OVERDUE_RESTART_MS=" + strconv.FormatInt(overdueRestart(o).Milliseconds(), 10)}
}

// recordLimits copies the client-side limits chosen at up into the state entry, so that every later
// process (a CLI call, a program) applies them.
func recordLimits(rec *state.Environment, o UpOptions) {
	rec.MaxInflight = o.MaxInflight
	rec.MaxSessions = o.MaxSessions
	rec.SessionTTLMs = o.SessionTTL.Milliseconds()
	rec.OverdueRestartMs = overdueRestart(o).Milliseconds()
}
