package rfenv

import (
	"context"
	"errors"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/rfenv/rfenv/pkg/backend"
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
	extra, err := host.ParseAll(o.Hosts)
	if err != nil {
		return nil, err
	}
	results := make([]DownResult, len(names))
	g, gctx := errgroup.WithContext(ctx)
	for i, name := range names {
		g.Go(func() error {
			r, err := c.downOne(gctx, name, extra, len(o.Hosts) > 0)
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

// downLocking runs just before downOne takes the environment's lock (a test seam: an up that
// changes the entry while down waits for the lock).
var downLocking = func(name string) {}

func (c *Client) downOne(ctx context.Context, name string, extra []host.Spec, explicitHosts bool) (DownResult, error) {
	res := DownResult{Name: name}
	downLocking(name)
	unlock, err := c.lockEnv(ctx, name)
	if err != nil {
		return res, err
	}
	defer unlock()
	// The entry is read under the lock: an up that held it may have changed the hosts (or replaced
	// an attached entry) while this down waited.
	rec, err := c.store.Get(ctx, name)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return res, err
	}
	if rec != nil && recordedBackend(rec) == backend.KindAttached {
		res.Attached = true
		return res, nil
	}
	var specs []host.Spec
	if explicitHosts {
		specs = append(specs, extra...)
	}
	if rec != nil {
		for _, h := range rec.Hosts {
			if sp, err := host.Parse(h); err == nil && !backend.ContainsSpec(specs, sp) {
				specs = append(specs, sp)
			}
		}
		for _, in := range rec.Instances {
			if sp, err := host.Parse(in.Host); err == nil && !backend.ContainsSpec(specs, sp) {
				specs = append(specs, sp)
			}
		}
	}
	if len(specs) == 0 {
		specs = extra // localhost unless --host was given
	}
	// Each backend removes what it runs on its hosts (Kubernetes first, as before: its objects are
	// deleted and awaited before Docker hosts are visited).
	order, by := c.groupByBackend(specs)
	slices.SortStableFunc(order, func(a, b backend.Backend) int {
		return boolInt(b.Kind() == backend.KindKube) - boolInt(a.Kind() == backend.KindKube)
	})
	for _, b := range order {
		n, err := b.Down(ctx, name, rec, by[b.Kind()])
		res.Removed += n
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Orphan is a labelled container (or Kubernetes object) that no state entry owns.
type Orphan = backend.Orphan

// Prune removes rfenv containers of this state directory that no state entry owns, on every host the
// state file mentions and on extra hosts (default localhost). Each backend lists what runs before it
// reads the state, so that an up recording its entry meanwhile keeps its replicas.
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
			if sp, err := host.Parse(h); err == nil && !backend.ContainsSpec(specs, sp) {
				specs = append(specs, sp)
			}
		}
	}
	known := func(ctx context.Context) (map[string]bool, error) {
		f, err := c.store.Load(ctx)
		if err != nil {
			return nil, err
		}
		out := make(map[string]bool, len(f.Environments))
		for n := range f.Environments {
			out[n] = true
		}
		return out, nil
	}
	order, by := c.groupByBackend(specs)
	slices.SortStableFunc(order, func(a, b backend.Backend) int {
		return boolInt(b.Kind() == backend.KindKube) - boolInt(a.Kind() == backend.KindKube)
	})
	var orphans []Orphan
	for _, b := range order {
		o, err := b.Prune(ctx, by[b.Kind()], known)
		orphans = append(orphans, o...)
		if err != nil {
			return orphans, err
		}
	}
	return orphans, nil
}

// CloseAll removes every environment this state directory knows (the registry's "close all").
func (c *Client) CloseAll(ctx context.Context) error {
	_, err := c.DownAll(ctx, DownOptions{})
	return err
}
