package docker

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// forHosts runs fn for each item, grouped by the host hostOf names: a host's items run together, and
// at most limit hosts are worked on at once. The first error cancels the rest and is returned.
func forHosts(ctx context.Context, limit int, items []int, hostOf func(int) string, fn func(ctx context.Context, item int) error) error {
	var hosts []string
	byHost := map[string][]int{}
	for _, it := range items {
		h := hostOf(it)
		if len(byHost[h]) == 0 {
			hosts = append(hosts, h)
		}
		byHost[h] = append(byHost[h], it)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for _, h := range hosts {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err // another host failed while this one waited for its turn
			}
			hg, hctx := errgroup.WithContext(gctx)
			for _, it := range byHost[h] {
				hg.Go(func() error { return fn(hctx, it) })
			}
			return hg.Wait()
		})
	}
	return g.Wait()
}
