package backend

import (
	"strconv"
	"time"

	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
)

// NoOverdueRestart, as UpOptions.OverdueRestart, turns the overdue restart off.
const NoOverdueRestart = time.Duration(-1)

// OverdueRestart is the effective limit (0: off).
func OverdueRestart(o UpOptions) time.Duration {
	switch {
	case o.OverdueRestart < 0:
		return 0
	case o.OverdueRestart == 0:
		return protocol.DefaultOverdueRestart
	}
	return o.OverdueRestart
}

// ShimVars are the variables that configure the shim in every replica (shim protocol 2).
func ShimVars(o UpOptions) []string {
	return []string{"RFENV_OVERDUE_RESTART_MS=" + strconv.FormatInt(OverdueRestart(o).Milliseconds(), 10)}
}

// RecordLimits copies the client-side limits chosen at up into the state entry, so that every later
// process (a CLI call, a program) applies them.
func RecordLimits(rec *state.Environment, o UpOptions) {
	rec.MaxInflight = o.MaxInflight
	rec.MaxSessions = o.MaxSessions
	rec.SessionTTLMs = o.SessionTTL.Milliseconds()
	rec.OverdueRestartMs = OverdueRestart(o).Milliseconds()
}
