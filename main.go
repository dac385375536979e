//go:build !rfenvlean

// Command rfenv builds, runs and calls containerised evaluation environments. This is the full
// binary (rfenv-full as released, rfenv from `go install`); main_lean.go is the lean front.
package main

import (
	"os"

	"github.com/rfenv/rfenv/cmd"
	"github.com/rfenv/rfenv/cmd/interrupt"
	"github.com/rfenv/rfenv/cmd/iostreams"
)

func main() {
	ctx, stop := interrupt.Context()
	code := cmd.Execute(ctx, iostreams.System(), os.Getenv, os.Args[1:])
	stop()
	os.Exit(code)
}
