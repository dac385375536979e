package cmd

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/protocol"
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
	replicaArg := func(s string) (int, error) {
		idx, err := strconv.Atoi(s)
		if err != nil {
			return 0, errs.New(errs.Usage, "replica %q: want its index", s)
		}
		return idx, nil
	}
	c.AddCommand(&cobra.Command{
		Use:   "follow NAME REPLICA",
		Short: "Find where a replica that stopped answering runs now; print its instance (JSON) if it moved, which the state file then records",
		Args:  exactArgs(2, "an environment name and a replica index"),
		RunE: func(cmd *cobra.Command, args []string) error {
			idx, err := replicaArg(args[1])
			if err != nil {
				return err
			}
			client, err := f.Client()
			if err != nil {
				return err
			}
			in, moved, err := client.FollowReplica(cmd.Context(), args[0], idx)
			if err != nil || !moved {
				return err
			}
			return json.NewEncoder(f.IO.Out).Encode(in)
		},
	})
	var afterCall bool
	explain := &cobra.Command{
		Use:   "explain NAME REPLICA",
		Short: "Print what is known to be wrong with a replica (nothing if nothing is)",
		Args:  exactArgs(2, "an environment name and a replica index"),
		RunE: func(cmd *cobra.Command, args []string) error {
			idx, err := replicaArg(args[1])
			if err != nil {
				return err
			}
			client, err := f.Client()
			if err != nil {
				return err
			}
			why, err := client.ExplainReplica(cmd.Context(), args[0], idx, afterCall)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(f.IO.Out, why)
			return err
		},
	}
	explain.Flags().BoolVar(&afterCall, "after-call", false, "a call just broke on the replica")
	c.AddCommand(explain)
	return c
}
