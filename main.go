// Command rfenv builds, runs and calls containerised evaluation environments.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/rfenv/rfenv/cmd"
	"github.com/rfenv/rfenv/cmd/iostreams"
)

var errInterrupted = errors.New("interrupted")

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		// The first signal cancels the work so that it cleans up; a second one ends the process.
		cancel(errInterrupted)
		signal.Stop(sigs)
	}()
	code := cmd.Execute(ctx, iostreams.System(), os.Getenv, os.Args[1:])
	cancel(nil)
	os.Exit(code)
}
