package docker

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
)

// ensureImage inspects the image on every host that will run a replica, sending it from the local
// daemon to hosts that lack it.
func (c *Backend) ensureImage(ctx context.Context, image string, specs []host.Spec, conns map[string]*dockerhost.Conn, o backend.UpOptions) (backend.ImageInfo, error) {
	info := backend.ImageInfo{IDs: map[string]string{}}
	var missing []host.Spec
	if o.Pull {
		if err := c.pullAll(ctx, image, specs, conns, o.Progress); err != nil {
			return info, err
		}
	}
	for _, sp := range specs {
		res, err := conns[sp.Raw].Docker.ImageInspect(ctx, image)
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				missing = append(missing, sp)
				continue
			}
			return info, errs.Wrap(errs.Infra, fmt.Errorf("inspect image %s on %s: %w", image, sp, err))
		}
		if info.ID == "" {
			info = backend.ImageInfoFrom(res, info.IDs)
		}
		info.IDs[sp.Raw] = res.ID
	}
	for _, sp := range missing {
		if sp.Kind != host.SSH || o.NoTransfer {
			return info, errs.New(errs.NotFound, "image %s not found on %s: build it there with `rfenv build %sDIR -t %s`%s", image, sp, buildHostFlag(sp), image, transferHint(sp, o))
		}
		if err := c.transferImage(ctx, image, sp, conns, o.Progress); err != nil {
			return info, err
		}
		res, err := conns[sp.Raw].Docker.ImageInspect(ctx, image)
		if err != nil {
			return info, errs.Wrap(errs.Infra, fmt.Errorf("inspect image %s on %s after transfer: %w", image, sp, err))
		}
		if info.ID == "" {
			info = backend.ImageInfoFrom(res, info.IDs)
		}
		info.IDs[sp.Raw] = res.ID
	}
	return info, nil
}

// buildHostFlag is the --host flag that builds on sp ("" for the local daemon).
func buildHostFlag(sp host.Spec) string {
	if sp.Kind == host.Local {
		return ""
	}
	return "--host " + sp.Raw + " "
}

func transferHint(sp host.Spec, o backend.UpOptions) string {
	if sp.Kind == host.SSH && o.NoTransfer {
		return " (or drop --no-transfer to send it from the local daemon)"
	}
	return ""
}
