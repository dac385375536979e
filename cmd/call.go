package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/cmd/flags"
)

// CallOptions are `rfenv call`'s inputs (defined in cmd/flags, which the lean front shares).
type CallOptions = flags.Call

func newCallCmd(f *Factory) *cobra.Command {
	o := &CallOptions{}
	c := &cobra.Command{
		Use:   "call NAME METHOD",
		Short: "Call a method of an environment",
		Long: `Call METHOD on one replica of environment NAME and print its JSON result on stdout
(indented on a terminal, one line otherwise).

--arg k=v takes v as JSON when it parses as JSON (5, true, [1,2], {"a":1}) and as a string
otherwise; --arg-str k=v always takes a string; --args-json gives all arguments at once (an object
for keyword arguments, an array for positional ones; @file reads a file, - reads stdin).

--batch FILE (or - for stdin) runs one call per JSON line (an object of keyword arguments, or
{"args": [...], "kwargs": {...}}), --concurrency at once, and writes {"index", "result"} or
{"index", "error"} lines to stdout in input order; the exit code is 0 only if every line succeeded.
A line with "session": "KEY" runs on that session's replica; the lines of one session run one at a
time, in order.

--session KEY runs the call on the replica that holds session KEY (rfenv session open prints new
keys; a key never opened is opened by its first call): every step of an episode reaches the process
that holds it. When that replica died, was replaced or restarted, the call fails with exit 6.

The deadline (--timeout: 90, 90s or 1m30s) is enforced in the container too: an async method is
cancelled there. Exit codes: 0 success, 1 the method raised, 2 usage error, 3 unknown environment or
method, 4 infrastructure (Docker, network, no healthy replica), 6 session lost, 124 deadline exceeded
(also for a call still queued for a free slot at its deadline), 130 interrupted.`,
		Example: `  rfenv call affine evaluate --arg task_type=sat --arg num_samples=5 --timeout 90
  rfenv call affine evaluate --args-json '{"task_type": "sat"}'
  echo '[1, 2]' | rfenv call calc add --args-json -
  rfenv call affine evaluate --batch tasks.jsonl --concurrency 32 > results.jsonl`,
		GroupID: groupCalling,
		Args:    exactArgs(2, "an environment name and a method"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name, o.Method = args[0], args[1]
			return runCall(cmd.Context(), f, o)
		},
	}
	o.Register(c.Flags(), f.Config.String(config.KeyTimeout))
	return c
}

func runCall(ctx context.Context, f *Factory, o *CallOptions) error {
	timeout, err := o.Check()
	if err != nil {
		return err
	}
	if o.Batch != "" {
		return runBatch(ctx, f, o, timeout)
	}
	args, err := o.Args(f.IO.In)
	if err != nil {
		return err
	}
	env, err := f.Env(ctx, o.Name, o.EnvOptions()...)
	if err != nil {
		return err
	}
	defer env.Release()
	res, err := o.Invoke(ctx, env, args, timeout)
	if err != nil {
		return err
	}
	return f.Printer().JSON(res)
}
