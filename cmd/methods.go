package cmd

import (
	"context"
	"time"

	"github.com/spf13/cobra"
)

// MethodsOptions are `rfenv methods`'s inputs.
type MethodsOptions struct {
	Name string
	JSON bool
}

func newMethodsCmd(f *Factory) *cobra.Command {
	o := &MethodsOptions{}
	c := &cobra.Command{
		Use:   "methods NAME",
		Short: "List the methods an environment offers",
		Long: `List the methods of environment NAME with their signatures and the first line of their
docstrings, as its server reports them (for an http environment: the POST routes of its OpenAPI schema).`,
		Example: `  rfenv methods affine
  rfenv methods affine --json | jq -r '.[].name'`,
		GroupID: groupInspect,
		Args:    exactArgs(1, "an environment name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return runMethods(cmd.Context(), f, o)
		},
	}
	c.Flags().BoolVar(&o.JSON, "json", false, "print the methods as JSON")
	return c
}

func runMethods(ctx context.Context, f *Factory, o *MethodsOptions) error {
	env, err := f.Env(ctx, o.Name)
	if err != nil {
		return err
	}
	defer env.Release()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ms, err := env.Methods(ctx)
	if err != nil {
		return err
	}
	p := f.Printer()
	if o.JSON {
		return p.JSON(ms)
	}
	rows := make([][]string, 0, len(ms))
	for _, m := range ms {
		name := m.Name
		if m.Async && f.IO.IsStdoutTTY() {
			name += p.Dim(" (async)")
		}
		rows = append(rows, []string{name, m.Signature, m.Doc})
	}
	return p.Table([]string{"method", "signature", "description"}, rows)
}
