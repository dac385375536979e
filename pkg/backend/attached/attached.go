// Package attached is the backend for servers rfenv did not start (`rfenv attach`): a shim or a
// user's http server already running somewhere reachable. It knows their URLs and nothing else: up
// cannot reconcile them, down only forgets them, and there are no container logs.
package attached

import (
	"context"
	"io"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/endpoint"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// Host is the host recorded for attached servers.
const Host = "attached"

// Backend reaches attached servers at their URLs.
type Backend struct{}

var _ backend.Backend = Backend{}

// New returns the attached backend.
func New(backend.Deps) Backend { return Backend{} }

// Kind implements backend.Backend.
func (Backend) Kind() string { return backend.KindAttached }

// Handles implements backend.Backend: no host spec places replicas here (attach does).
func (Backend) Handles(host.Spec) bool { return false }

// Up implements backend.Backend: rfenv did not start the servers, so it cannot bring them up.
func (Backend) Up(_ context.Context, req backend.UpRequest) (backend.Opened, error) {
	return backend.Opened{}, errs.New(errs.Conflict, "%s is an attached environment (rfenv did not start it); `rfenv down %s` forgets it, then `up` can start a new one", req.Options.Name, req.Options.Name)
}

// Open implements backend.Backend: each server at its URL.
func (Backend) Open(_ context.Context, rec *state.Environment) (backend.Opened, error) {
	eps := make([]pool.Endpoint, 0, len(rec.Instances))
	for _, in := range rec.Instances {
		eps = append(eps, endpoint.Of(rec, in))
	}
	return backend.Opened{Env: rec, Endpoints: eps}, nil
}

// Down implements backend.Backend: nothing to remove; the library forgets the entry.
func (Backend) Down(context.Context, string, *state.Environment, []host.Spec) (int, error) {
	return 0, nil
}

// Prune implements backend.Backend: attached servers are never orphans.
func (Backend) Prune(context.Context, []host.Spec, func(context.Context) (map[string]bool, error)) ([]backend.Orphan, error) {
	return nil, nil
}

// Logs implements backend.Backend.
func (Backend) Logs(_ context.Context, rec *state.Environment, _ backend.LogsOptions, _ io.Writer) error {
	return errs.New(errs.Usage, "environment %s is attached: rfenv does not run its servers, so it has no container logs to show; read them where the servers run", rec.Name)
}

// Explain implements backend.Backend: rfenv knows nothing of the servers beyond their answers.
func (Backend) Explain(context.Context, *state.Environment, int, bool) string { return "" }
