//go:build !rfenvlean

package cmd

import "github.com/rfenv/rfenv/cmd/iostreams"

// leanBuild: this is the full binary, which links every command and backend.
const leanBuild = false

// runFull is never needed by the full binary.
func runFull(*iostreams.IOStreams, func(string) string, []string) int { return ExitInfra }
