package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// DownOptions are `rfenv down`'s inputs.
type DownOptions struct {
	Names   []string
	All     bool
	Orphans bool
	Hosts   []string
	JSON    bool
}

func newDownCmd(f *Factory) *cobra.Command {
	o := &DownOptions{}
	c := &cobra.Command{
		Use:   "down NAME... | --all | --orphans",
		Short: "Remove environments and their containers",
		Long: `Remove the containers of each named environment, in parallel, and forget it. Containers
labelled for the environment that the state file lost are removed too. Removing an environment that
is already gone is not an error.

--orphans removes rfenv containers of this state directory that no environment owns, on every host
the state file mentions and on --host hosts.`,
		Example: `  rfenv down affine
  rfenv down --all
  rfenv down --orphans --host ssh://gpu1`,
		GroupID: groupLifecycle,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Names = args
			return runDown(cmd.Context(), f, o)
		},
	}
	fl := c.Flags()
	fl.BoolVar(&o.All, "all", false, "remove every environment in the state file")
	fl.BoolVar(&o.Orphans, "orphans", false, "remove rfenv containers that no environment owns")
	fl.StringArrayVar(&o.Hosts, "host", nil, "also look on this Docker host or k8s://[context][/namespace] (repeatable)")
	fl.BoolVar(&o.JSON, "json", false, "print what was removed as JSON")
	return c
}

func runDown(ctx context.Context, f *Factory, o *DownOptions) error {
	if len(o.Names) == 0 && !o.All && !o.Orphans {
		return errs.New(errs.Usage, "name an environment to remove (rfenv down NAME), or pass --all or --orphans")
	}
	if len(o.Names) > 0 && o.All {
		return errs.New(errs.Usage, "give environment names or --all, not both")
	}
	client, err := f.Client()
	if err != nil {
		return err
	}
	p := f.Printer()
	start := time.Now()
	report := struct {
		Environments []rfenv.DownResult `json:"environments"`
		Orphans      []rfenv.Orphan     `json:"orphans,omitempty"`
	}{Environments: []rfenv.DownResult{}}
	if o.All {
		report.Environments, err = client.DownAll(ctx, rfenv.DownOptions{Hosts: o.Hosts})
	} else if len(o.Names) > 0 {
		report.Environments, err = client.Down(ctx, o.Names, rfenv.DownOptions{Hosts: o.Hosts})
	}
	if err != nil {
		return err
	}
	if o.Orphans {
		report.Orphans, err = client.Prune(ctx, o.Hosts)
		if err != nil {
			return err
		}
	}
	if o.JSON {
		return p.JSON(report)
	}
	for _, r := range report.Environments {
		switch {
		case r.Attached:
			p.Success("forgot attached environment %s (its servers keep running)", r.Name)
		case r.Removed == 0 && !r.Forgotten:
			p.Info("%s: nothing to remove", r.Name)
		default:
			p.Success("%s: removed %d container(s)", r.Name, r.Removed)
		}
		fmt.Fprintln(f.IO.Out, r.Name)
	}
	for _, orp := range report.Orphans {
		p.Success("removed orphan %s on %s", orp.Name, orp.Host)
	}
	if o.Orphans && len(report.Orphans) == 0 {
		p.Info("no orphaned containers")
	}
	p.Info("done in %s", time.Since(start).Round(time.Millisecond))
	return nil
}
