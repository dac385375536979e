package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/pkg/rfenv"
)

// AttachOptions are `rfenv attach`'s inputs.
type AttachOptions struct {
	Name     string
	URLs     []string
	Token    string
	Type     string
	Balancer string
	JSON     bool
}

func newAttachCmd(f *Factory) *cobra.Command {
	o := &AttachOptions{}
	c := &cobra.Command{
		Use:   "attach NAME URL...",
		Short: "Register servers rfenv did not start as an environment",
		Long: `Register environment servers that are already running somewhere reachable — rfenv's shim
started by hand, or an http-based server — under NAME, so that call, methods, stats and ls work on
them as on any pool. Each URL must answer /health. down only forgets an attached environment; its
servers keep running. The token (--token, or $RFENV_ATTACH_TOKEN) is sent as a bearer token.`,
		Example: `  rfenv attach shared-eval http://10.0.0.5:8000 http://10.0.0.6:8000 --token "$TOKEN"
  rfenv attach myapi http://127.0.0.1:9000 --type http`,
		GroupID: groupLifecycle,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return exactArgs(2, "a name and at least one server URL")(cmd, args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name, o.URLs = args[0], args[1:]
			if o.Token == "" {
				o.Token = f.Getenv("RFENV_ATTACH_TOKEN")
			}
			return runAttach(cmd.Context(), f, o)
		},
	}
	fl := c.Flags()
	fl.StringVar(&o.Token, "token", "", "bearer token the servers expect (default $RFENV_ATTACH_TOKEN)")
	fl.StringVar(&o.Type, "type", "", "server type: function (rfenv's shim) or http (default: detected)")
	fl.StringVar(&o.Balancer, "lb", "random", "balancing strategy: random, round_robin, least_busy")
	fl.BoolVar(&o.JSON, "json", false, "print the environment as JSON")
	return c
}

func runAttach(ctx context.Context, f *Factory, o *AttachOptions) error {
	client, err := f.Client()
	if err != nil {
		return err
	}
	env, err := client.Attach(ctx, o.Name, o.URLs, rfenv.AttachOptions{Token: o.Token, Type: o.Type, Balancer: o.Balancer})
	if err != nil {
		return err
	}
	defer env.Release()
	rec := env.Record()
	p := f.Printer()
	if o.JSON {
		return p.JSON(viewOf(&rec))
	}
	p.Success("attached %d %s server(s) as %s", len(rec.Instances), rec.Type, rec.Name)
	_, err = f.IO.Out.Write([]byte(rec.Name + "\n"))
	return err
}
