package docker

import (
	"context"
	"fmt"
	"io"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/state"
)

// Logs writes the output (stdout and stderr) of an environment's containers to w, read from each
// container's own host. When several replicas are shown, each line starts with the replica's
// container name ("NAME-i | "); lines are written whole, so replicas followed at once never
// interleave mid-line. Without Follow the replicas' logs are written one after the other, in
// replica order. A Follow that ends because ctx is done is not an error; one that fails on a replica
// stops following the others and returns that error.
func (c *Backend) Logs(ctx context.Context, rec *state.Environment, o backend.LogsOptions, w io.Writer) error {
	name := rec.Name
	insts, err := backend.SelectReplicas(rec, o.Replicas)
	if err != nil {
		return err
	}
	var specs []host.Spec
	for _, in := range insts {
		sp, err := host.Parse(in.Host)
		if err != nil {
			return err
		}
		if !backend.ContainsSpec(specs, sp) {
			specs = append(specs, sp)
		}
	}
	conns, err := c.connectAll(ctx, specs)
	if err != nil {
		return err
	}
	out := &backend.SyncWriter{W: w}
	sources := make([]logSource, len(insts))
	width := 0
	for i, in := range insts {
		label := in.ContainerName
		if label == "" {
			label = containers.Name(name, in.Index)
		}
		width = max(width, len(label))
		ref := in.ContainerID
		if ref == "" {
			ref = label
		}
		sp, _ := host.Parse(in.Host)
		sources[i] = logSource{conn: conns[sp.Raw], ref: ref, label: label}
	}
	if len(sources) > 1 {
		for i := range sources {
			sources[i].prefix = fmt.Sprintf("%-*s | ", width, sources[i].label)
		}
	}
	if !o.Follow {
		for _, src := range sources {
			if err := c.streamLogs(ctx, src, o, out); err != nil {
				return err
			}
		}
		return nil
	}
	// Followed together; the first replica that fails stops the others, so the error shows at once.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(sources))
	for _, src := range sources {
		go func() { errc <- c.streamLogs(fctx, src, o, out) }()
	}
	var first error
	for range sources {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// logSource is one container whose logs are shown.
type logSource struct {
	conn   *dockerhost.Conn
	ref    string // container ID, or name when the state file has no ID
	label  string // container name
	prefix string // "" when a single replica is shown
}

func (c *Backend) streamLogs(ctx context.Context, src logSource, o backend.LogsOptions, out *backend.SyncWriter) error {
	tail := "all"
	switch {
	case o.Tail > 0:
		tail = strconv.Itoa(o.Tail)
	case o.Tail < 0:
		tail = "0"
	}
	rc, err := src.conn.Docker.ContainerLogs(ctx, src.ref, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: o.Follow, Tail: tail, Timestamps: o.Timestamps,
	})
	if err != nil {
		switch {
		case o.Follow && ctx.Err() != nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case cerrdefs.IsNotFound(err):
			return errs.New(errs.NotFound, "container %s is gone from %s: run `rfenv up` again to replace it, or `rfenv down` to forget it", src.label, src.conn.Spec)
		}
		return errs.Wrap(errs.Infra, fmt.Errorf("read the logs of %s on %s: %w", src.label, src.conn.Spec, err))
	}
	defer rc.Close()
	// Both streams go through one line buffer, so a replica's lines keep the order Docker sent them.
	lw := &backend.LineWriter{Out: out, Prefix: []byte(src.prefix)}
	var dst io.Writer = lw
	if src.prefix == "" {
		dst = out // a single replica: passed through as it comes, partial lines included
	}
	_, err = stdcopy.StdCopy(dst, dst, rc)
	if ferr := lw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		if ctx.Err() != nil {
			if o.Follow {
				return nil
			}
			return ctx.Err()
		}
		return errs.Wrap(errs.Infra, fmt.Errorf("read the logs of %s on %s: %w", src.label, src.conn.Spec, err))
	}
	return nil
}
