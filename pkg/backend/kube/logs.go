package kube

import (
	"context"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	kapi "github.com/rfenv/rfenv/pkg/kube"
	"github.com/rfenv/rfenv/pkg/state"
)

// logsKube is Logs for an environment on Kubernetes: the current pods' logs, read through the API
// server. Replica indices are those `stats` shows.
func (c *Backend) logsKube(ctx context.Context, rec *state.Environment, sp host.Spec, o backend.LogsOptions, w io.Writer) error {
	conn, err := c.kubeConn(sp)
	if err != nil {
		return err
	}
	pods, _, err := conn.ListPods(ctx, rec.Name, c.store.ID())
	if err != nil {
		return err
	}
	_, current := newKubeEnv(conn, rec, c.store.ID()).update(pods)
	if len(current) == 0 {
		// None serves: show every pod that is not terminating, e.g. crashing ones.
		for i, p := range pods {
			if p.DeletionTimestamp == nil {
				current = append(current, state.Instance{Index: i, Host: sp.Raw, ContainerName: p.Name})
			}
		}
	}
	view := *rec
	view.Instances = current
	insts, err := backend.SelectReplicas(&view, o.Replicas)
	if err != nil {
		return err
	}
	out := &backend.SyncWriter{W: w}
	width := 0
	for _, in := range insts {
		width = max(width, len(in.ContainerName))
	}
	stream := func(in state.Instance) error {
		prefix := ""
		if len(insts) > 1 {
			prefix = fmt.Sprintf("%-*s | ", width, in.ContainerName)
		}
		lo := &corev1.PodLogOptions{Container: kapi.ContainerName, Follow: o.Follow, Timestamps: o.Timestamps}
		switch {
		case o.Tail > 0:
			n := int64(o.Tail)
			lo.TailLines = &n
		case o.Tail < 0:
			n := int64(0)
			lo.TailLines = &n
		}
		rc, err := conn.Logs(ctx, in.ContainerName, lo)
		if err != nil {
			if ctx.Err() != nil {
				if o.Follow {
					return nil
				}
				return ctx.Err()
			}
			return errs.Wrap(errs.Infra, fmt.Errorf("read the logs of pod %s on %s: %w", in.ContainerName, sp, err))
		}
		defer rc.Close()
		lw := &backend.LineWriter{Out: out, Prefix: []byte(prefix)}
		var dst io.Writer = lw
		if prefix == "" {
			dst = out
		}
		_, err = io.Copy(dst, rc)
		if ferr := lw.Flush(); err == nil {
			err = ferr
		}
		if err != nil && ctx.Err() == nil {
			return errs.Wrap(errs.Infra, fmt.Errorf("read the logs of pod %s on %s: %w", in.ContainerName, sp, err))
		}
		if ctx.Err() != nil && !o.Follow {
			return ctx.Err()
		}
		return nil
	}
	if !o.Follow {
		for _, in := range insts {
			if err := stream(in); err != nil {
				return err
			}
		}
		return nil
	}
	errc := make(chan error, len(insts))
	for _, in := range insts {
		go func() { errc <- stream(in) }()
	}
	var all []error
	for range insts {
		if err := <-errc; err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}
