package rfenv

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
)

// DefaultReadyTimeout bounds how long up waits for replicas to answer /health.
const DefaultReadyTimeout = protocol.DefaultReadyTimeout

// NameFromImage derives an environment name from an image reference: "reg:5000/team/affine:v1" → "affine".
func NameFromImage(image string) string {
	ref := image
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	if i := strings.Index(ref, ":"); i >= 0 {
		ref = ref[:i]
	}
	return ref
}

// Up brings up an environment: it starts the replicas that are missing or dead, keeps those that run
// and match, scales to the requested count, waits until every replica is ready and records the
// environment in the state file. On failure it removes what it started.
func (c *Client) Up(ctx context.Context, image string, opts ...UpOption) (*Env, error) {
	o, err := normalizeUp(image, opts)
	if err != nil {
		return nil, err
	}
	specs, err := host.ParseAll(o.Hosts)
	if err != nil {
		return nil, err
	}
	b, err := c.backendFor(specs)
	if err != nil {
		return nil, err
	}
	prev, unlock, err := c.beginUp(ctx, o.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	op, err := b.Up(ctx, backend.UpRequest{Image: image, Options: o, Hosts: specs, Prev: prev})
	if err != nil {
		return nil, err
	}
	return c.newEnv(b, op.Env, op)
}

// beginUp takes the environment's lock and returns its previous entry (nil if none). An attached
// environment cannot be brought up: rfenv did not start its servers.
func (c *Client) beginUp(ctx context.Context, name string) (*state.Environment, func(), error) {
	unlock, err := c.lockEnv(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	prev, err := c.store.Get(ctx, name)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		unlock()
		return nil, nil, err
	}
	if prev != nil && recordedBackend(prev) == backend.KindAttached {
		unlock()
		return nil, nil, errs.New(errs.Conflict, "%s is an attached environment (rfenv did not start it); `rfenv down %s` forgets it, then `up` can start a new one", name, name)
	}
	return prev, unlock, nil
}

func normalizeUp(image string, opts []UpOption) (UpOptions, error) {
	var o UpOptions
	for _, f := range opts {
		f(&o)
	}
	if image == "" {
		return o, errs.New(errs.Usage, "no image given: rfenv up IMAGE (build one with `rfenv build DIR -t IMAGE`)")
	}
	if o.Name == "" {
		o.Name = NameFromImage(image)
	}
	if err := state.ValidateName(o.Name); err != nil {
		return o, errs.Wrap(errs.Usage, fmt.Errorf("%w (set one with --name)", err))
	}
	if o.Replicas == 0 {
		o.Replicas = protocol.DefaultReplicas
	}
	if o.Replicas < 0 {
		return o, errs.New(errs.Usage, "--replicas %d: need at least 1 (use `rfenv down` to remove an environment)", o.Replicas)
	}
	if o.Balancer == "" {
		o.Balancer = protocol.DefaultBalancer
	}
	if err := pool.ValidateStrategy(o.Balancer); err != nil {
		return o, err
	}
	switch o.Type {
	case "", pool.KindFunction, pool.KindHTTP:
	default:
		return o, errs.New(errs.Usage, "--type %q: use function or http", o.Type)
	}
	switch o.Transport {
	case "":
		o.Transport = protocol.DefaultTransport
	case protocol.TransportAuto, protocol.TransportDirect, protocol.TransportPublished:
	default:
		return o, errs.New(errs.Usage, "transport %q: use %s, %s or %s", o.Transport, protocol.TransportAuto, protocol.TransportDirect, protocol.TransportPublished)
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	for k := range o.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return o, errs.New(errs.Usage, "environment variable name %q is invalid", k)
		}
		if strings.HasPrefix(k, protocol.EnvReservedPrefix) {
			return o, errs.New(errs.Usage, "environment variable %s: the RFENV_ prefix is reserved for rfenv", k)
		}
	}
	return o, nil
}
