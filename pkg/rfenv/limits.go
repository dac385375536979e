package rfenv

import (
	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/protocol"
)

// DefaultOverdueRestart is how long past its deadline a call may keep running before its replica
// restarts itself (UpOptions.OverdueRestart); see protocol.DefaultOverdueRestart.
const DefaultOverdueRestart = protocol.DefaultOverdueRestart

// NoOverdueRestart, as UpOptions.OverdueRestart, turns the overdue restart off.
const NoOverdueRestart = backend.NoOverdueRestart
