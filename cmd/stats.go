package cmd

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/pkg/pool"
)

// StatsOptions are `rfenv stats`'s inputs.
type StatsOptions struct {
	Name string
	JSON bool
}

func newStatsCmd(f *Factory) *cobra.Command {
	o := &StatsOptions{}
	c := &cobra.Command{
		Use:   "stats NAME",
		Short: "Show an environment's replicas, health and call counts",
		Long: `Show each replica of environment NAME: where it runs, whether it is healthy, and the calls its
server has served (from every process, not only this one), in flight, failed, and their latency.`,
		Example: `  rfenv stats affine
  rfenv stats affine --json | jq .total_requests`,
		GroupID: groupInspect,
		Args:    exactArgs(1, "an environment name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return runStats(cmd.Context(), f, o)
		},
	}
	c.Flags().BoolVar(&o.JSON, "json", false, "print the stats as JSON")
	return c
}

func runStats(ctx context.Context, f *Factory, o *StatsOptions) error {
	env, err := f.Env(ctx, o.Name)
	if err != nil {
		return err
	}
	defer env.Release()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st := env.Stats(ctx)
	p := f.Printer()
	if o.JSON {
		return p.JSON(st)
	}
	return printStats(f, st)
}

func printStats(f *Factory, st pool.Stats) error {
	p := f.Printer()
	rows := make([][]string, 0, len(st.Instances))
	for _, in := range st.Instances {
		health := healthWord(p, in)
		rows = append(rows, []string{
			strconv.Itoa(in.Index), in.Host, fmt.Sprintf("%s:%d", in.Address, in.Port), health,
			strconv.FormatInt(in.Requests, 10), strconv.FormatInt(in.InFlight, 10), strconv.FormatInt(in.Errors, 10),
			fmt.Sprintf("%.2f", in.MeanMs), fmt.Sprintf("%.2f", in.P50Ms),
			strconv.Itoa(in.Sessions), strconv.Itoa(in.OverdueRestarts),
		})
	}
	if err := p.Table([]string{"replica", "host", "address", "health", "requests", "in_flight", "errors", "mean_ms", "p50_ms", "sessions", "restarts"}, rows); err != nil {
		return err
	}
	if f.IO.IsStdoutTTY() {
		fmt.Fprintf(f.IO.Out, "\n%s: %d/%d healthy, %d requests, %d sessions\n", st.Name, st.HealthyInstances, st.TotalInstances, st.TotalRequests, st.TotalSessions)
		for _, in := range st.Instances {
			if in.LastRestart != "" {
				fmt.Fprintf(f.IO.Out, "replica %d restarted itself %d time(s) for an overdue call; last: %s\n", in.Index, in.OverdueRestarts, in.LastRestart)
			}
		}
	}
	return nil
}

func healthWord(p interface {
	Good(string) string
	Bad(string) string
}, in pool.InstanceStats) string {
	switch {
	case in.Healthy:
		return p.Good("healthy")
	case in.Status == "busy":
		return p.Bad(fmt.Sprintf("busy (%d overdue)", in.Overdue))
	case in.Status != "":
		return p.Bad(in.Status)
	}
	return p.Bad("unhealthy")
}
