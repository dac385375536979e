package rfenv

import (
	"context"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/state"
)

// DownOptions choose what Down removes.
type DownOptions struct {
	// Hosts are visited besides those the state file records (where an interrupted up may have left
	// containers). Default when an environment is unknown: localhost.
	Hosts []string
}

// DownResult says what Down did for one environment.
type DownResult struct {
	Name      string `json:"name"`
	Removed   int    `json:"removed"`   // containers removed
	Forgotten bool   `json:"forgotten"` // a state entry was deleted
	Attached  bool   `json:"attached,omitempty"`
}

// Down removes environments' containers, in parallel, and their state entries. It also removes
// containers labelled for the environment that the state file lost. Removing an environment that is
// already gone is not an error.
func (c *Client) Down(ctx context.Context, names []string, o DownOptions) ([]DownResult, error) {
	if len(names) == 0 {
		return nil, errs.New(errs.Usage, "no environment named: rfenv down NAME... (or --all)")
	}
	f, err := c.store.Load(ctx)
	if err != nil {
		return nil, err
	}
	extra, err := host.ParseAll(o.Hosts)
	if err != nil {
		return nil, err
	}
	results := make([]DownResult, len(names))
	g, gctx := errgroup.WithContext(ctx)
	for i, name := range names {
		g.Go(func() error {
			r, err := c.downOne(gctx, name, f.Environments[name], extra, len(o.Hosts) > 0)
			results[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return results, err
	}
	err = c.store.Update(ctx, func(f *state.File) error {
		for i, name := range names {
			if _, ok := f.Environments[name]; ok {
				delete(f.Environments, name)
				results[i].Forgotten = true
			}
		}
		return nil
	})
	for _, name := range names {
		// Its replicas are gone, and so are the episodes its sessions held.
		if t, terr := c.store.Sessions(name); terr == nil {
			_ = t.Drop()
		}
	}
	return results, err
}

// DownAll removes every environment in the state file.
func (c *Client) DownAll(ctx context.Context, o DownOptions) ([]DownResult, error) {
	f, err := c.store.Load(ctx)
	if err != nil {
		return nil, err
	}
	names := f.Names()
	if len(names) == 0 {
		return nil, nil
	}
	return c.Down(ctx, names, o)
}

func (c *Client) downOne(ctx context.Context, name string, rec *state.Environment, extra []host.Spec, explicitHosts bool) (DownResult, error) {
	res := DownResult{Name: name}
	unlock, err := c.lockEnv(ctx, name)
	if err != nil {
		return res, err
	}
	defer unlock()
	if rec != nil && rec.Attached {
		res.Attached = true
		return res, nil
	}
	var specs []host.Spec
	if explicitHosts {
		specs = append(specs, extra...)
	}
	if rec != nil {
		for _, h := range rec.Hosts {
			if sp, err := host.Parse(h); err == nil && !containsSpec(specs, sp) {
				specs = append(specs, sp)
			}
		}
		for _, in := range rec.Instances {
			if sp, err := host.Parse(in.Host); err == nil && !containsSpec(specs, sp) {
				specs = append(specs, sp)
			}
		}
	}
	if len(specs) == 0 {
		specs = extra // localhost unless --host was given
	}
	specs, removed, err := c.downKube(ctx, name, specs) // k8s:// hosts: see kube_down.go
	res.Removed += removed
	if err != nil || len(specs) == 0 {
		return res, err
	}
	conns, err := c.connectAll(ctx, specs)
	if err != nil {
		return res, err
	}
	found, err := c.findExisting(ctx, name, specs, conns)
	if err != nil {
		return res, err
	}
	var items []toRemove
	for _, e := range dedupeByContainer(found, nil) {
		items = append(items, toRemove{conn: e.conn, id: e.summary.ID})
	}
	res.Removed = len(items)
	return res, c.removeAll(ctx, items)
}

// Orphan is a labelled container that no state entry owns.
type Orphan struct {
	Host string `json:"host"`
	ID   string `json:"id"`
	Name string `json:"name"`
	Env  string `json:"env"`
}

// Prune removes rfenv containers of this state directory that no state entry owns, on every host the
// state file mentions and on extra hosts (default localhost).
func (c *Client) Prune(ctx context.Context, extraHosts []string) ([]Orphan, error) {
	f, err := c.store.Load(ctx)
	if err != nil {
		return nil, err
	}
	specs, err := host.ParseAll(extraHosts)
	if err != nil {
		return nil, err
	}
	for _, e := range f.Environments {
		for _, h := range e.Hosts {
			if sp, err := host.Parse(h); err == nil && !containsSpec(specs, sp) {
				specs = append(specs, sp)
			}
		}
	}
	specs, orphans, err := c.pruneKube(ctx, f, specs) // k8s:// hosts: see kube_down.go
	if err != nil || len(specs) == 0 {
		return orphans, err
	}
	conns, err := c.connectAll(ctx, specs)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var items []toRemove
	seen := map[string]bool{}
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
				if seen[s.ID] {
					continue // the same daemon reached under two host specs
				}
				seen[s.ID] = true
				env := s.Labels[containers.LabelEnv]
				// A known environment's containers are never orphans, even ones its entry does not
				// list yet: an up in progress records its entry first, and `up` reconciles the rest.
				if _, ok := f.Environments[env]; ok {
					continue
				}
				name := ""
				if len(s.Names) > 0 {
					name = trimSlash(s.Names[0])
				}
				orphans = append(orphans, Orphan{Host: sp.Raw, ID: s.ID, Name: name, Env: env})
				items = append(items, toRemove{conn: conns[sp.Raw], id: s.ID})
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
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

// CloseAll removes every environment this state directory knows (the registry's "close all").
func (c *Client) CloseAll(ctx context.Context) error {
	_, err := c.DownAll(ctx, DownOptions{})
	return err
}
