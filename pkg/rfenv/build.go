package rfenv

import (
	"context"
	"errors"
	"fmt"

	"github.com/rfenv/rfenv/pkg/build"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
)

// BuildResult is one host's build.
type BuildResult struct {
	Host string `json:"host"`
	*build.Result
}

// Build builds an environment directory into opts.Tag on each host (default: localhost), one after
// another so that their progress does not interleave. BuildKit runs on each daemon; for a remote host
// the build context travels through the SSH connection.
func (c *Client) Build(ctx context.Context, hosts []string, opts build.Options) ([]BuildResult, error) {
	if opts.Logger == nil {
		opts.Logger = c.log
	}
	specs, err := host.ParseAll(hosts)
	if err != nil {
		return nil, err
	}
	if _, err := build.Detect(opts.Dir); err != nil && errors.Is(err, build.ErrNoEnvPy) {
		return nil, errs.Wrap(errs.Usage, err)
	}
	var out []BuildResult
	for _, sp := range specs {
		conn, err := c.conn(ctx, sp)
		if err != nil {
			return out, err
		}
		res, err := build.Build(ctx, conn.Docker, opts)
		if err != nil {
			if errs.KindOf(err) == nil {
				err = errs.Wrap(errs.Infra, err)
			}
			if len(specs) > 1 {
				err = fmt.Errorf("build on %s: %w", sp, err)
			}
			return out, err
		}
		out = append(out, BuildResult{Host: sp.Raw, Result: res})
	}
	return out, nil
}
