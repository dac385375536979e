package docker

import (
	"context"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
)

// pullAll pulls image on every host at once. A host that cannot pull (no registry reachable, as in
// air-gapped clusters) keeps its local copy with a warning; only a host with neither is an error.
func (c *Backend) pullAll(ctx context.Context, image string, specs []host.Spec, conns map[string]*dockerhost.Conn, progress io.Writer) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hostConcurrency)
	for _, sp := range specs {
		g.Go(func() error {
			docker := conns[sp.Raw].Docker
			err := pullOne(gctx, docker, image)
			if err == nil {
				if progress != nil {
					fmt.Fprintf(progress, "pulled %s on %s\n", image, sp)
				}
				return nil
			}
			if _, ierr := docker.ImageInspect(gctx, image); ierr == nil {
				c.log.Warn("pull failed; using the local image", "image", image, "host", sp.Raw, "err", err)
				if progress != nil {
					fmt.Fprintf(progress, "could not pull %s on %s (%v); using its local copy\n", image, sp, err)
				}
				return nil
			}
			return errs.New(errs.NotFound, "pull %s on %s: %v (build it there with `rfenv build --host %s`, or drop --pull to transfer it from the local daemon)", image, sp, err, sp)
		})
	}
	return g.Wait()
}

func pullOne(ctx context.Context, docker *client.Client, image string) error {
	resp, err := docker.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("not found in its registry")
		}
		return err
	}
	defer resp.Close()
	return loadStreamError(resp)
}
