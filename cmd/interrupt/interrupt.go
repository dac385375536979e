// Package interrupt gives both binaries' main the same handling of Ctrl-C and SIGTERM.
package interrupt

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// ErrInterrupted is the cause of a context cancelled by a signal.
var ErrInterrupted = errors.New("interrupted")

// Context is cancelled by the first SIGINT or SIGTERM, so that the work in progress cleans up; a
// second signal ends the process. Call stop when the work is done.
func Context() (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel(ErrInterrupted)
		signal.Stop(sigs)
	}()
	return ctx, func() { cancel(nil) }
}
