//go:build rfenvlean

// Command rfenv, built with tag rfenvlean, is the lean front released as `rfenv`: it runs plain
// calls itself and hands every other command line to rfenv-full beside it (see cmd/front).
package main

import (
	"os"

	"github.com/rfenv/rfenv/cmd/front"
	"github.com/rfenv/rfenv/cmd/interrupt"
	"github.com/rfenv/rfenv/cmd/iostreams"
)

func main() {
	ctx, stop := interrupt.Context()
	code := front.Run(ctx, iostreams.System(), os.Getenv, os.Args[1:])
	stop()
	os.Exit(code)
}
