// Package kube is the backend for Kubernetes clusters (k8s://context/namespace): a Deployment of the
// image and its Secret per environment, pods followed by a watch, reached through the API server's
// port-forward (or at their pod IPs when this process runs in the cluster network).
package kube

import (
	"context"
	"io"
	"log/slog"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	kapi "github.com/rfenv/rfenv/pkg/kube"
	"github.com/rfenv/rfenv/pkg/state"
)

// Backend runs replicas as the pods of a Deployment.
type Backend struct {
	store *state.Store
	hosts *dockerhost.Connector // the local Docker daemon, to read an image's labels when it has the image
	log   *slog.Logger
	kubes kapi.Connector // one connection per cluster namespace
}

var _ backend.Backend = (*Backend)(nil)

// New returns the Kubernetes backend.
func New(d backend.Deps) *Backend { return &Backend{store: d.Store, hosts: d.Hosts, log: d.Log} }

// Kind implements backend.Backend.
func (c *Backend) Kind() string { return backend.KindKube }

// Handles implements backend.Backend: k8s:// hosts.
func (c *Backend) Handles(sp host.Spec) bool { return sp.Kind == host.K8s }

// Open implements backend.Backend: the current pods (one list request), followed while held.
func (c *Backend) Open(ctx context.Context, rec *state.Environment) (backend.Opened, error) {
	sp, ok := kubeSpec(rec)
	if !ok {
		return backend.Opened{}, errs.New(errs.Conflict, "environment %s is recorded on Kubernetes but names no k8s:// host; `rfenv down %s` forgets it", rec.Name, rec.Name)
	}
	return c.getKube(ctx, rec, sp)
}

// Down implements backend.Backend.
func (c *Backend) Down(ctx context.Context, name string, _ *state.Environment, specs []host.Spec) (int, error) {
	return c.downKube(ctx, name, specs)
}

// Prune implements backend.Backend.
func (c *Backend) Prune(ctx context.Context, specs []host.Spec, known func(context.Context) (map[string]bool, error)) ([]backend.Orphan, error) {
	return c.pruneKube(ctx, specs, known)
}

// Logs implements backend.Backend.
func (c *Backend) Logs(ctx context.Context, rec *state.Environment, o backend.LogsOptions, w io.Writer) error {
	sp, _ := kubeSpec(rec)
	return c.logsKube(ctx, rec, sp, o, w)
}

// Explain implements backend.Backend. A pod's troubles show in its events and in `rfenv logs`;
// nothing is added to the call's error.
func (c *Backend) Explain(context.Context, *state.Environment, int, bool) string { return "" }

// putEnv records an environment in the state file, replacing its previous entry.
func (c *Backend) putEnv(ctx context.Context, rec *state.Environment) error {
	return c.store.Update(ctx, func(f *state.File) error {
		f.Environments[rec.Name] = rec
		return nil
	})
}
