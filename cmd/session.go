package cmd

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// SessionOptions are the inputs of `rfenv session open|close|ls`.
type SessionOptions struct {
	Name string
	Key  string
	JSON bool
}

func newSessionCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "session",
		Short: "Open, list and close sessions: calls pinned to one replica",
		Long: `A session pins calls to one replica: the one holding an episode that reset() created in its
memory, so that every step() reaches it. Pass the key to calls with --session KEY (or put
"session": "KEY" on --batch lines). Sessions are shared by every rfenv process using the same state
directory, so a script may call ` + "`rfenv call --session KEY`" + ` once per step.

A new session goes to the healthy replica with the fewest live sessions. It lasts until it is closed,
it idles past the environment's --session-ttl, or its replica dies, is replaced or restarts: then its
calls fail with exit code 6 and never move to another replica. A key given to --session that was
never opened is opened by its first call, so scripts may choose their own keys.`,
		Example: `  key=$(rfenv session open game)
  rfenv call game reset --session "$key"
  rfenv call game step --session "$key" --arg action=3
  rfenv session ls game
  rfenv session close game "$key"`,
		GroupID: groupCalling,
	}
	c.AddCommand(newSessionOpenCmd(f), newSessionCloseCmd(f), newSessionLsCmd(f))
	return c
}

func newSessionOpenCmd(f *Factory) *cobra.Command {
	o := &SessionOptions{}
	c := &cobra.Command{
		Use:   "open NAME [KEY]",
		Short: "Open a session on the least-loaded replica and print its key",
		Long: `Open a session of environment NAME on the healthy replica with the fewest live sessions and
print its key on stdout. With KEY, open that key (a key that is already open stays where it is).
Fails at once (exit 4) when every replica holds --max-sessions sessions.`,
		Example: `  key=$(rfenv session open game)
  rfenv session open game episode-17 --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 || len(args) == 2 {
				return nil
			}
			return exactArgs(1, "an environment name and optionally a key")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			if len(args) == 2 {
				o.Key = args[1]
			}
			return runSessionOpen(cmd.Context(), f, o)
		},
	}
	c.Flags().BoolVar(&o.JSON, "json", false, "print the session as JSON")
	return c
}

func runSessionOpen(ctx context.Context, f *Factory, o *SessionOptions) error {
	env, err := f.Env(ctx, o.Name)
	if err != nil {
		return err
	}
	defer env.Release()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var key string
	if o.Key != "" {
		key = o.Key
	} else {
		s, err := env.OpenSession(ctx)
		if err != nil {
			return err
		}
		key = s.Key()
	}
	info, err := env.Session(key).Open(ctx)
	if err != nil {
		return err
	}
	if o.JSON {
		return f.Printer().JSON(info)
	}
	f.Printer().Success("session %s is on replica %d of %s", info.Key, info.Replica, o.Name)
	_, err = fmt.Fprintln(f.IO.Out, info.Key)
	return err
}

func newSessionCloseCmd(f *Factory) *cobra.Command {
	o := &SessionOptions{}
	return &cobra.Command{
		Use:   "close NAME KEY",
		Short: "Close a session (its replica keeps running)",
		Long: `Forget session KEY of environment NAME. Its replica keeps running; the episode state it holds
is the environment's to free. Closing a key that is not open is not an error.`,
		Example: `  rfenv session close game "$key"`,
		Args:    exactArgs(2, "an environment name and a session key"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name, o.Key = args[0], args[1]
			env, err := f.Env(cmd.Context(), o.Name)
			if err != nil {
				return err
			}
			defer env.Release()
			if err := env.Session(o.Key).Close(cmd.Context()); err != nil {
				return err
			}
			f.Printer().Success("closed session %s of %s", o.Key, o.Name)
			return nil
		},
	}
}

func newSessionLsCmd(f *Factory) *cobra.Command {
	o := &SessionOptions{}
	c := &cobra.Command{
		Use:   "ls NAME",
		Short: "List the open sessions of an environment",
		Long: `List the open sessions of environment NAME: key, replica, age, idle time and calls made.
Sessions idle past the environment's --session-ttl are removed as they are listed.`,
		Example: `  rfenv session ls game
  rfenv session ls game --json | jq -r '.[].key'`,
		Args: exactArgs(1, "an environment name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return runSessionLs(cmd.Context(), f, o)
		},
	}
	c.Flags().BoolVar(&o.JSON, "json", false, "print the sessions as JSON")
	return c
}

func runSessionLs(ctx context.Context, f *Factory, o *SessionOptions) error {
	env, err := f.Env(ctx, o.Name)
	if err != nil {
		return err
	}
	defer env.Release()
	list, err := env.Sessions(ctx)
	if err != nil {
		return err
	}
	p := f.Printer()
	if o.JSON {
		return p.JSON(list)
	}
	now := time.Now()
	rows := make([][]string, 0, len(list))
	for _, s := range list {
		rows = append(rows, []string{s.Key, strconv.Itoa(s.Replica), ago(now, s.Created), ago(now, s.LastUsed), strconv.FormatInt(s.Calls, 10)})
	}
	return p.Table([]string{"key", "replica", "age", "idle", "calls"}, rows)
}

func ago(now, t time.Time) string {
	return now.Sub(t).Round(time.Second).String()
}
