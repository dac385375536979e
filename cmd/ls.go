package cmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// LsOptions are `rfenv ls`'s inputs.
type LsOptions struct {
	JSON bool
}

func newLsCmd(f *Factory) *cobra.Command {
	o := &LsOptions{}
	c := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List active environments",
		Long:    `List the environments in the state file with their image, replicas, hosts and how many replicas answer healthy now.`,
		Example: `  rfenv ls
  rfenv ls --json | jq -r '.[].name'`,
		GroupID: groupInspect,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLs(cmd.Context(), f, o)
		},
	}
	c.Flags().BoolVar(&o.JSON, "json", false, "print the environments as JSON")
	return c
}

func runLs(ctx context.Context, f *Factory, o *LsOptions) error {
	client, err := f.Client()
	if err != nil {
		return err
	}
	recs, err := client.List(ctx)
	if err != nil {
		return err
	}
	views := make([]envView, len(recs))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, rec := range recs {
		views[i] = viewOf(rec)
		wg.Add(1)
		go func() {
			defer wg.Done()
			env, err := client.Get(ctx, rec.Name)
			if err != nil {
				return
			}
			defer env.Release()
			healthy := 0
			for j, h := range env.Pool().Probe(ctx) {
				ok := h.Ready()
				if ok {
					healthy++
				}
				if j < len(views[i].Instances) {
					views[i].Instances[j].Healthy = &ok
					views[i].Instances[j].Status = h.Status
				}
			}
			views[i].Healthy = &healthy
			if list, err := env.Sessions(ctx); err == nil {
				n := len(list)
				views[i].Sessions = &n
			}
		}()
	}
	wg.Wait()
	p := f.Printer()
	if o.JSON {
		return p.JSON(views)
	}
	rows := make([][]string, 0, len(views))
	for _, v := range views {
		healthy := "?"
		if v.Healthy != nil {
			healthy = fmt.Sprintf("%d/%d", *v.Healthy, v.Replicas)
			if *v.Healthy < v.Replicas {
				healthy = p.Bad(healthy)
			} else {
				healthy = p.Good(healthy)
			}
		}
		image := v.Image
		if v.Attached {
			image = "(attached)"
		}
		sessions := "?"
		if v.Sessions != nil {
			sessions = strconv.Itoa(*v.Sessions)
		}
		rows = append(rows, []string{v.Name, image, v.Type, healthy, sessions, strings.Join(v.Hosts, ",")})
	}
	return p.Table([]string{"name", "image", "type", "healthy", "sessions", "hosts"}, rows)
}
