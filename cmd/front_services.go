package cmd

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// newFrontCmd is what the lean front (cmd/front), which links no Docker client, asks of this binary
// for an environment it calls itself: following a replica that moved, and saying why one broke. It
// is hidden: its words are a protocol between the two binaries of one release.
func newFrontCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:    protocol.FrontServicesCommand,
		Short:  "Services the lean front asks of the full binary",
		Hidden: true,
	}
	// onReplica runs do with the client, the environment's name and the replica's index.
	onReplica := func(do func(cmd *cobra.Command, client *rfenv.Client, name string, replica int) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			idx, err := strconv.Atoi(args[1])
			if err != nil {
				return errs.New(errs.Usage, "replica %q is not an index: give the replica's number (0, 1, ...)", args[1])
			}
			client, err := f.Client()
			if err != nil {
				return err
			}
			return do(cmd, client, args[0], idx)
		}
	}
	c.AddCommand(&cobra.Command{
		Use:   "follow NAME REPLICA",
		Short: "Find where a replica that stopped answering runs now; print its instance (JSON) if it moved, which the state file then records",
		Args:  exactArgs(2, "an environment name and a replica index"),
		RunE: onReplica(func(cmd *cobra.Command, client *rfenv.Client, name string, replica int) error {
			in, moved, err := client.FollowReplica(cmd.Context(), name, replica)
			if err != nil || !moved {
				return err
			}
			return json.NewEncoder(f.IO.Out).Encode(in)
		}),
	})
	var afterCall bool
	explain := &cobra.Command{
		Use:   "explain NAME REPLICA",
		Short: "Print what is known to be wrong with a replica (nothing if nothing is)",
		Args:  exactArgs(2, "an environment name and a replica index"),
		RunE: onReplica(func(cmd *cobra.Command, client *rfenv.Client, name string, replica int) error {
			why, err := client.ExplainReplica(cmd.Context(), name, replica, afterCall)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(f.IO.Out, why)
			return err
		}),
	}
	explain.Flags().BoolVar(&afterCall, "after-call", false, "a call just broke on the replica")
	c.AddCommand(explain)
	return c
}
