package rfenv

import (
	"context"
	"io"

	"github.com/rfenv/rfenv/pkg/backend"
)

// LogsOptions choose what Logs shows (defined in pkg/backend).
type LogsOptions = backend.LogsOptions

// Logs writes the output (stdout and stderr) of an environment's replicas to w, read from each
// replica's own host. When several replicas are shown, each line starts with the replica's
// container name ("NAME-i | "); lines are written whole, so replicas followed at once never
// interleave mid-line. Without Follow the replicas' logs are written one after the other, in
// replica order. A Follow that ends because ctx is done is not an error; one that fails on a replica
// stops following the others and returns that error.
func (c *Client) Logs(ctx context.Context, name string, o LogsOptions, w io.Writer) error {
	rec, err := c.store.Get(ctx, name)
	if err != nil {
		return err
	}
	b, err := c.backendOf(rec)
	if err != nil {
		return err
	}
	return b.Logs(ctx, rec, o, w)
}
