//go:build rfenvlean

package build

import (
	"context"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/protocol"
)

// Build is not linked into the lean front binary (tag rfenvlean), which leaves BuildKit out so that
// calls start fast; the front hands build commands to the full binary before reaching here.
func Build(ctx context.Context, docker *client.Client, opts Options) (*Result, error) {
	return nil, errs.New(errs.Usage, "building images is not linked into this lean rfenv binary; run the full binary (%s)", protocol.FullBinaryName)
}
