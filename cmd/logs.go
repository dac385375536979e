package cmd

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// LogsOptions are `rfenv logs`'s inputs.
type LogsOptions struct {
	Name       string
	Replica    int
	AllReplica bool // --replica not given
	Follow     bool
	Tail       string
	Timestamps bool
}

func newLogsCmd(f *Factory) *cobra.Command {
	o := &LogsOptions{}
	c := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show the output of an environment's containers",
		Long: `Show what the containers of environment NAME wrote to stdout and stderr: the server's start-up
lines ("rfenv-shim: ... listening", "ready: N method(s)"), env.py's prints and tracebacks. Logs are
read from each container's own host, over SSH for remote ones.

With several replicas each line starts with its container's name ("NAME-i | "); --replica shows one
replica, unprefixed. Without --follow the replicas' logs are shown one after the other; with it they
are streamed together, line by line, until every container stops or you press Ctrl-C.`,
		Example: `  rfenv logs affine
  rfenv logs affine --replica 1 --tail 50
  rfenv logs affine -f --tail 0        # only what is written from now on`,
		GroupID: groupInspect,
		Args:    exactArgs(1, "an environment name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			o.AllReplica = !cmd.Flags().Changed("replica")
			return runLogs(cmd.Context(), f, o)
		},
	}
	fl := c.Flags()
	fl.IntVar(&o.Replica, "replica", 0, "show only the replica with this index (see rfenv stats NAME)")
	fl.BoolVarP(&o.Follow, "follow", "f", false, "keep streaming new output until Ctrl-C")
	fl.StringVar(&o.Tail, "tail", "all", "lines to show from the end of each replica's log: a number, or all")
	fl.BoolVarP(&o.Timestamps, "timestamps", "t", false, "show when Docker received each line")
	return c
}

func runLogs(ctx context.Context, f *Factory, o *LogsOptions) error {
	lo := rfenv.LogsOptions{Follow: o.Follow, Timestamps: o.Timestamps}
	if !o.AllReplica {
		if o.Replica < 0 {
			return errs.New(errs.Usage, "--replica %d: replica indices start at 0 (see rfenv stats %s)", o.Replica, o.Name)
		}
		lo.Replicas = []int{o.Replica}
	}
	switch t := strings.TrimSpace(o.Tail); t {
	case "all", "":
	default:
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return errs.New(errs.Usage, "--tail %q: expected a number of lines (0 or more) or all", o.Tail)
		}
		lo.Tail = n
		if n == 0 {
			lo.Tail = -1 // the library's "no past lines"
		}
	}
	client, err := f.Client()
	if err != nil {
		return err
	}
	return client.Logs(ctx, o.Name, lo, f.IO.Out)
}
