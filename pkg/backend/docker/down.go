package docker

import (
	"context"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/state"
)

// Down implements backend.Backend: every container labelled for the environment on the hosts.
func (c *Backend) Down(ctx context.Context, name string, _ *state.Environment, specs []host.Spec) (int, error) {
	if len(specs) == 0 {
		return 0, nil
	}
	conns, err := c.connectAll(ctx, specs)
	if err != nil {
		return 0, err
	}
	found, err := c.findExisting(ctx, name, specs, conns)
	if err != nil {
		return 0, err
	}
	var items []toRemove
	for _, e := range dedupeByContainer(found, nil) {
		items = append(items, toRemove{conn: e.conn, id: e.summary.ID})
	}
	return len(items), c.removeAll(ctx, items)
}

// Prune implements backend.Backend: containers of this state directory whose environment the state
// file does not know. The containers are listed first and the state read after, so that an up that
// records its entry and starts containers in between keeps them.
func (c *Backend) Prune(ctx context.Context, specs []host.Spec, known func(context.Context) (map[string]bool, error)) ([]backend.Orphan, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	conns, err := c.connectAll(ctx, specs)
	if err != nil {
		return nil, err
	}
	type sighting struct {
		spec    string
		id      string
		name    string
		envName string
	}
	var mu sync.Mutex
	var seen []sighting
	ids := map[string]bool{}
	g, gctx := errgroup.WithContext(ctx)
	for _, sp := range specs {
		g.Go(func() error {
			list, err := containers.List(gctx, conns[sp.Raw], containers.Filter{StateID: c.store.ID()})
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range list {
				if ids[s.ID] {
					continue // the same daemon reached under two host specs
				}
				ids[s.ID] = true
				name := ""
				if len(s.Names) > 0 {
					name = trimSlash(s.Names[0])
				}
				seen = append(seen, sighting{spec: sp.Raw, id: s.ID, name: name, envName: s.Labels[containers.LabelEnv]})
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	envs, err := known(ctx)
	if err != nil {
		return nil, err
	}
	var orphans []backend.Orphan
	var items []toRemove
	for _, s := range seen {
		// A known environment's containers are never orphans, even ones its entry does not list
		// yet: an up in progress records its entry first, and `up` reconciles the rest.
		if envs[s.envName] {
			continue
		}
		orphans = append(orphans, backend.Orphan{Host: s.spec, ID: s.id, Name: s.name, Env: s.envName})
		items = append(items, toRemove{conn: conns[s.spec], id: s.id})
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].Name < orphans[j].Name })
	if err := c.removeAll(ctx, items); err != nil {
		return orphans, err
	}
	return orphans, nil
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}
