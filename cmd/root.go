// Package cmd is rfenv's command line: one file per command, each with an Options struct, flag
// parsing, and a run function that does the work through pkg/rfenv.
package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/pkg/errs"
)

// Command groups shown by `rfenv --help`.
const (
	groupLifecycle = "lifecycle"
	groupCalling   = "calling"
	groupInspect   = "inspect"
)

// NewRoot builds the command tree.
func NewRoot(f *Factory) (*cobra.Command, error) {
	cfg, err := config.Load(f.Getenv)
	if err != nil {
		return nil, errs.Wrap(errs.Usage, err)
	}
	f.Config = cfg
	root := &cobra.Command{
		Use:   "rfenv",
		Short: "Build, run and call containerised evaluation environments",
		Long: `rfenv builds an environment directory (env.py with an Actor class or functions, or a FastAPI
app) into a Docker image, runs replicas of it on local and remote Docker hosts, and calls its
methods over HTTP with load balancing, deadlines and health tracking.`,
		Example: `  rfenv build ./environments/affine -t affine:latest
  rfenv up affine:latest --replicas 3 -e CHUTES_API_KEY
  rfenv call affine evaluate --arg task_type=sat --arg num_samples=5 --timeout 90
  rfenv stats affine
  rfenv down affine`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if f.StateDir == "" {
				f.StateDir = cfg.String(config.KeyStateDir)
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return errs.New(errs.Usage, "%v (see `%s --help`)", err, c.CommandPath())
	})
	f.Global.Register(root.PersistentFlags())

	root.AddGroup(
		&cobra.Group{ID: groupLifecycle, Title: "Environment lifecycle:"},
		&cobra.Group{ID: groupCalling, Title: "Calling:"},
		&cobra.Group{ID: groupInspect, Title: "Inspection:"},
	)
	for _, c := range []*cobra.Command{
		newInitCmd(f), newBuildCmd(f), newUpCmd(f), newDevCmd(f), newDownCmd(f), newAttachCmd(f),
		newCallCmd(f), newSessionCmd(f), newValidateCmd(f), newServeCmd(f, nil),
		newMethodsCmd(f), newStatsCmd(f), newLsCmd(f), newLogsCmd(f),
		newConfigCmd(f), newVersionCmd(f), newFrontCmd(f),
	} {
		root.AddCommand(c)
	}
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	addCompletions(root, f) // after SetOut: the completion command keeps the writer it sees
	return root, nil
}

// exactArgs is cobra.ExactArgs with a usage-kind error that says what the command wants.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return errs.New(errs.Usage, "%s takes %s, got %d argument(s); usage: %s", cmd.CommandPath(), what, len(args), cmd.UseLine())
		}
		return nil
	}
}

var _ = fmt.Sprint
