package rfenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/state"
)

// LogsOptions choose what Logs shows.
type LogsOptions struct {
	// Replicas are the indices of the replicas to show; empty means every replica.
	Replicas []int
	// Follow keeps streaming new output, from all the chosen replicas at once, until ctx is done or
	// every container has stopped.
	Follow bool
	// Tail limits each replica's past output: more than 0 shows its last Tail lines, 0 all of it,
	// and less than 0 none (with Follow: only what is written from now on).
	Tail int
	// Timestamps puts the time Docker received each line before it.
	Timestamps bool
}

// maxPartialLine bounds how much of an unterminated line is held back to keep prefixed output
// whole; a longer one is written out as a line of its own.
const maxPartialLine = 1 << 20

// Logs writes the output (stdout and stderr) of an environment's containers to w, read from each
// container's own host. When several replicas are shown, each line starts with the replica's
// container name ("NAME-i | "); lines are written whole, so replicas followed at once never
// interleave mid-line. Without Follow the replicas' logs are written one after the other, in
// replica order. A Follow that ends because ctx is done is not an error; one that fails on a replica
// stops following the others and returns that error.
func (c *Client) Logs(ctx context.Context, name string, o LogsOptions, w io.Writer) error {
	rec, err := c.store.Get(ctx, name)
	if err != nil {
		return err
	}
	if rec.Attached {
		return errs.New(errs.Usage, "environment %s is attached: rfenv does not run its servers, so it has no container logs to show; read them where the servers run", name)
	}
	if sp, ok := kubeSpec(rec); ok {
		return c.logsKube(ctx, rec, sp, o, w) // see kube_logs.go
	}
	insts, err := selectReplicas(rec, o.Replicas)
	if err != nil {
		return err
	}
	var specs []host.Spec
	for _, in := range insts {
		sp, err := host.Parse(in.Host)
		if err != nil {
			return err
		}
		if !containsSpec(specs, sp) {
			specs = append(specs, sp)
		}
	}
	conns, err := c.connectAll(ctx, specs)
	if err != nil {
		return err
	}
	out := &syncWriter{w: w}
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
	conn   *host.Conn
	ref    string // container ID, or name when the state file has no ID
	label  string // container name
	prefix string // "" when a single replica is shown
}

func selectReplicas(rec *state.Environment, want []int) ([]state.Instance, error) {
	if len(want) == 0 {
		return rec.Instances, nil
	}
	var out []state.Instance
	for _, idx := range want {
		i := slices.IndexFunc(rec.Instances, func(in state.Instance) bool { return in.Index == idx })
		if i < 0 {
			have := make([]string, len(rec.Instances))
			for j, in := range rec.Instances {
				have[j] = strconv.Itoa(in.Index)
			}
			return nil, errs.New(errs.NotFound, "environment %s has no replica %d; its replicas are %s (see rfenv stats %s)", rec.Name, idx, strings.Join(have, ", "), rec.Name)
		}
		out = append(out, rec.Instances[i])
	}
	return out, nil
}

func (c *Client) streamLogs(ctx context.Context, src logSource, o LogsOptions, out *syncWriter) error {
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
	lw := &lineWriter{out: out, prefix: []byte(src.prefix)}
	var dst io.Writer = lw
	if src.prefix == "" {
		dst = out // a single replica: passed through as it comes, partial lines included
	}
	_, err = stdcopy.StdCopy(dst, dst, rc)
	if ferr := lw.flush(); err == nil {
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

// syncWriter serialises writes from the replicas' goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// lineWriter prefixes each line and writes only whole lines, each batch in one Write.
type lineWriter struct {
	out    io.Writer
	prefix []byte
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	end := bytes.LastIndexByte(l.buf, '\n') + 1
	if end == 0 && len(l.buf) < maxPartialLine {
		return len(p), nil
	}
	if end == 0 {
		l.buf = append(l.buf, '\n')
		end = len(l.buf)
	}
	var b bytes.Buffer
	for rest := l.buf[:end]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n') + 1
		b.Write(l.prefix)
		b.Write(rest[:i])
		rest = rest[i:]
	}
	l.buf = l.buf[:copy(l.buf, l.buf[end:])]
	if _, err := l.out.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes an unterminated last line, ended with a newline.
func (l *lineWriter) flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.Write([]byte{'\n'})
	return err
}
