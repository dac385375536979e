package docker

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/host"
)

// findExisting lists the environment's containers on the hosts, by label.
func (c *Backend) findExisting(ctx context.Context, name string, specs []host.Spec, conns map[string]*dockerhost.Conn) ([]existing, error) {
	var mu sync.Mutex
	var out []existing
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hostConcurrency)
	for _, sp := range specs {
		g.Go(func() error {
			conn := conns[sp.Raw]
			items, err := containers.List(gctx, conn, containers.Filter{StateID: c.store.ID(), Env: name})
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range items {
				idx, err := strconv.Atoi(s.Labels[containers.LabelReplica])
				if err != nil {
					idx = -1
				}
				out = append(out, existing{conn: conn, summary: s, index: idx})
			}
			return nil
		})
	}
	return out, g.Wait()
}

// tokenFromContainers recovers the token of an environment whose state entry was lost.
func (c *Backend) tokenFromContainers(ctx context.Context, found []existing) string {
	for _, e := range found {
		res, err := e.conn.Docker.ContainerInspect(ctx, e.summary.ID, client.ContainerInspectOptions{})
		if err != nil || res.Container.Config == nil {
			continue
		}
		for _, kv := range res.Container.Config.Env {
			if v, ok := strings.CutPrefix(kv, "RFENV_TOKEN="); ok {
				return v
			}
		}
	}
	return ""
}

// removeAll removes containers in parallel.
func (c *Backend) removeAll(ctx context.Context, items []toRemove) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, it := range items {
		g.Go(func() error { return containers.Remove(gctx, it.conn, it.id) })
	}
	return g.Wait()
}
