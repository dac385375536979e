package docker

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
)

// Up brings up an environment: it starts the replicas that are missing or dead, keeps those that run
// and match, scales to the requested count, waits until every replica is ready and records the
// environment in the state file. On failure it removes what it started.
func (c *Backend) Up(ctx context.Context, req backend.UpRequest) (backend.Opened, error) {
	o, image, specs, prev := req.Options, req.Image, req.Hosts, req.Prev
	placement := host.Place(o.Replicas, specs)
	// Hosts that held replicas before must be visited too, to remove what no longer belongs there.
	visit := append([]host.Spec{}, specs...)
	if prev != nil {
		for _, h := range prev.Hosts {
			if sp, err := host.Parse(h); err == nil && !backend.ContainsSpec(visit, sp) {
				visit = append(visit, sp)
			}
		}
	}
	conns, err := c.connectAll(ctx, visit)
	if err != nil {
		return backend.Opened{}, err
	}
	if err := checkTransport(o, conns); err != nil {
		return backend.Opened{}, err
	}
	img, err := c.ensureImage(ctx, image, specs, conns, o)
	if err != nil {
		return backend.Opened{}, err
	}
	kind := o.Type
	if kind == "" {
		kind = img.Kind
	}
	found, err := c.findExisting(ctx, o.Name, visit, conns)
	if err != nil {
		return backend.Opened{}, err
	}
	token := ""
	if prev != nil {
		token = prev.Token
	}
	if token == "" {
		token = c.tokenFromContainers(ctx, found)
	}
	if token == "" || o.ForceRecreate {
		token = backend.NewToken()
	}
	hash := backend.ConfigHash(token, img, kind, hashedTransport(o, placement, conns))

	plan, err := planReplicas(o, placement, found, hash)
	if err != nil {
		return backend.Opened{}, err
	}
	c.dropUnresponsive(ctx, &plan, found, kind, img.Port, token, o.Name, o.Transport)

	// Record the environment before starting anything, so an interrupted up leaves an entry that
	// `rfenv down NAME` finds (the containers are labelled as well, for `down --orphans`).
	rec := backend.NewEntry(backend.KindDocker, o, image, img, kind, token, hash, backend.SpecStrings(specs), prev)
	rec.Transport = recordedTransport(o)
	if err := c.putEnv(ctx, rec); err != nil {
		return backend.Opened{}, err
	}

	if err := c.removeAll(ctx, plan.remove); err != nil {
		return backend.Opened{}, err
	}
	started, err := c.startReplicas(ctx, o, img, kind, token, hash, plan.create, conns)
	if err == nil {
		if err = c.readyAndRecord(ctx, rec, plan.keep, started, conns, o); err == nil {
			return backend.Opened{Env: rec, Endpoints: c.Endpoints(rec, rec.Instances)}, nil
		}
	}
	return backend.Opened{}, c.rollbackUp(ctx, o.Name, rec, plan, started, visit, conns, err)
}

// readyAndRecord waits until the started replicas are ready, then records the environment with all
// of its replicas.
func (c *Backend) readyAndRecord(ctx context.Context, rec *state.Environment, keep, started []state.Instance, conns map[string]*dockerhost.Conn, o backend.UpOptions) error {
	instances := append(append([]state.Instance{}, keep...), started...)
	sort.Slice(instances, func(i, j int) bool { return instances[i].Index < instances[j].Index })
	p, err := c.newPool(rec, instances)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := c.waitReady(ctx, rec, p, started, conns, o); err != nil {
		return err
	}
	if o.Transport == protocol.TransportAuto {
		rec.Transport = c.settleAuto(ctx, rec, instances, conns)
		c.log.Info("transport auto", "env", rec.Name, "chose", rec.Transport)
	}
	rec.Instances = instances
	return c.putEnv(ctx, rec)
}

// rollbackUp undoes a failed up: it removes what this call started, records only the replicas it
// kept, and turns a cancellation into an interruption. It runs to completion even after Ctrl-C.
func (c *Backend) rollbackUp(ctx context.Context, name string, rec *state.Environment, plan replicaPlan, started []state.Instance, visit []host.Spec, conns map[string]*dockerhost.Conn, upErr error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var doomed []toRemove
	for _, in := range started {
		doomed = append(doomed, toRemove{conn: conns[in.Host], id: in.ContainerID})
	}
	if err := c.removeAll(cctx, doomed); err != nil {
		c.log.Warn("clean-up after failed up", "err", err)
	}
	removed := len(doomed)
	// A create request that was in flight when ctx was cancelled can still complete in the daemon,
	// leaving a container this call never learnt the ID of. This process holds the environment's
	// lock, so every labelled container of it that is not kept is one this call started: sweep them.
	if found, err := c.findExisting(cctx, name, visit, conns); err == nil {
		kept := map[string]bool{}
		for _, in := range plan.keep {
			kept[in.ContainerID] = true
		}
		var stray []toRemove
		for _, e := range dedupeByContainer(found, nil) {
			if !kept[e.summary.ID] && !slices.ContainsFunc(doomed, func(d toRemove) bool { return d.id == e.summary.ID }) {
				stray = append(stray, toRemove{conn: e.conn, id: e.summary.ID})
			}
		}
		if err := c.removeAll(cctx, stray); err != nil {
			c.log.Warn("clean-up after failed up", "err", err)
		}
		removed += len(stray)
	}
	if err := c.store.Update(cctx, func(f *state.File) error {
		if len(plan.keep) == 0 {
			delete(f.Environments, name)
			return nil
		}
		rec.Instances = plan.keep
		f.Environments[name] = rec
		return nil
	}); err != nil {
		c.log.Warn("state update after failed up", "err", err)
	}
	return backend.Interrupted(ctx, upErr, fmt.Sprintf("up %s interrupted; removed the %d container(s) it had started", name, removed))
}

// startReplicas creates and starts the given replica indices in parallel.
func (c *Backend) startReplicas(ctx context.Context, o backend.UpOptions, img backend.ImageInfo, kind, token, hash string, indices []int, conns map[string]*dockerhost.Conn) ([]state.Instance, error) {
	specs, _ := host.ParseAll(o.Hosts)
	placement := host.Place(o.Replicas, specs)
	vars := make([]string, 0, len(o.Env)+4)
	for k, v := range o.Env {
		vars = append(vars, k+"="+v)
	}
	sort.Strings(vars)
	var mu sync.Mutex
	var out []state.Instance
	err := forHosts(ctx, hostConcurrency, indices, func(i int) string { return placement[i].Raw }, func(gctx context.Context, i int) error {
		conn := conns[placement[i].Raw]
		spec := containers.Spec{
			Env: o.Name, Index: i, Image: img.IDOn(placement[i].Raw), Port: img.Port,
			Vars: append(append(append([]string{}, vars...), backend.ShimVars(o)...),
				"RFENV_TOKEN="+token, "RFENV_PORT="+strconv.Itoa(img.Port),
				"RFENV_ENV_NAME="+o.Name, "RFENV_REPLICA="+strconv.Itoa(i)),
			Secrets: o.Secrets, Memory: o.Memory, NanoCPUs: o.NanoCPUs, Network: o.Network,
			Volumes: o.Volumes, GPUs: o.GPUs, Labels: o.Labels, StateID: c.store.ID(), ConfigHash: hash,
			Publish: publishes(o.Transport, conn),
		}
		// The create is not cut short by Ctrl-C: the daemon would finish it anyway, leaving a
		// container whose ID this call never learns. Knowing every ID, the failure path removes all.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 2*time.Minute)
		id, err := containers.Create(cctx, conn, spec)
		cancel()
		if err == nil {
			err = gctx.Err()
		}
		if id != "" {
			// Record it at once so that a failure anywhere removes it.
			mu.Lock()
			out = append(out, state.Instance{Index: i, Host: conn.Spec.Raw, ContainerID: id, ContainerName: containers.Name(o.Name, i), Port: img.Port})
			mu.Unlock()
		}
		if err != nil {
			return err
		}
		r, err := containers.Start(gctx, conn, id, spec)
		if err != nil {
			return err
		}
		if !r.Address.IsValid() {
			return errs.New(errs.Infra, "replica %s on %s has no IP address on network %q", r.Name, conn.Spec, o.Network)
		}
		addr, port := r.Address.String(), img.Port
		if o.Transport == protocol.TransportPublished { // auto starts at the bridge address (settleAuto)
			if !r.Published.IsValid() {
				return errs.New(errs.Infra, "replica %s on %s: Docker published no port on 127.0.0.1", r.Name, conn.Spec)
			}
			addr, port = r.Published.Addr().String(), int(r.Published.Port())
		}
		mu.Lock()
		for k := range out {
			if out[k].ContainerID == id {
				out[k].Address, out[k].Port = addr, port
			}
		}
		mu.Unlock()
		return nil
	})
	return out, err
}

// waitReady waits for the started replicas to answer /health, watching for containers that exit.
func (c *Backend) waitReady(ctx context.Context, rec *state.Environment, p *pool.Pool, started []state.Instance, conns map[string]*dockerhost.Conn, o backend.UpOptions) error {
	ctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	for _, in := range started {
		g.Go(func() error {
			conn := conns[in.Host]
			watch := containers.WatchExit(gctx, conn, in.ContainerID)
			defer watch.Stop()
			// The watch was armed after start; a container that already stopped shows in inspect.
			exits := watch.Exited()
			if r, err := conn.Docker.ContainerInspect(gctx, in.ContainerID, client.ContainerInspectOptions{}); err == nil && r.Container.State != nil && !r.Container.State.Running {
				ch := make(chan int64, 1)
				ch <- int64(r.Container.State.ExitCode)
				exits = ch
			}
			fb := &fallbackProbe{c: c, rec: rec, conn: conn, in: in}
			defer fb.close()
			probe := func(pctx context.Context) (bool, error) {
				var h pool.Health
				var err error
				if o.Transport == protocol.TransportAuto {
					h, err = fb.health(pctx, p)
				} else {
					h, err = p.HealthOf(pctx, in.Index)
				}
				if hint := unroutableHint(conn, err); hint != "" {
					return false, &containers.FatalProbeError{Message: hint}
				}
				if err != nil {
					return false, err
				}
				if h.Status == "failed" {
					return false, &containers.FatalProbeError{Message: backend.HealthFailure(h)}
				}
				return h.Ready(), nil
			}
			return containers.WaitReady(gctx, conn, in.ContainerID, in.ContainerName, exits, probe)
		})
	}
	return g.Wait()
}

// dropUnresponsive moves kept replicas that run but do not answer /health (hung, or their server
// died inside a running container) to the remove-and-recreate lists: up heals what it can see is dead.
// A replica that is busy with a call past its deadline is alive and stays.
func (c *Backend) dropUnresponsive(ctx context.Context, plan *replicaPlan, found []existing, kind string, port int, token, name, transport string) {
	if len(plan.keep) == 0 {
		return
	}
	for i := range plan.keep {
		if plan.keep[i].Port == 0 { // a published replica's port is its own
			plan.keep[i].Port = port
		}
	}
	rec := &state.Environment{Name: name, Type: kind, Port: port, Token: token}
	p, err := c.newPool(rec, plan.keep)
	if err != nil {
		return
	}
	defer p.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	health := p.Probe(pctx)
	var keep []state.Instance
	for i, in := range plan.keep {
		h := health[i]
		if !h.Ready() && h.Status != "busy" && transport == protocol.TransportAuto {
			// auto may reach it at its published port only.
			for _, e := range found {
				if e.summary.ID == in.ContainerID {
					fb := &fallbackProbe{c: c, rec: rec, conn: e.conn, in: in}
					if fh, err := fb.health(pctx, p); err == nil {
						h = fh
					}
					fb.close()
					break
				}
			}
		}
		if h.Ready() || h.Status == "busy" {
			keep = append(keep, in)
			continue
		}
		c.log.Info("replacing unresponsive replica", "env", name, "replica", in.Index, "status", h.Status)
		for _, e := range found {
			if e.summary.ID == in.ContainerID {
				plan.remove = append(plan.remove, toRemove{conn: e.conn, id: e.summary.ID})
			}
		}
		plan.create = append(plan.create, in.Index)
	}
	plan.keep = keep
}

// recordedTransport is the transport an up records while it starts replicas (auto settles it once
// they are ready).
func recordedTransport(o backend.UpOptions) string {
	if o.Transport == protocol.TransportPublished {
		return protocol.TransportPublished
	}
	return protocol.TransportDirect
}

// hashedTransport is o as the configuration hash sees it: a port binding is part of a container's
// configuration, whichever transport asked for it, so auto and published replicas are the same.
func hashedTransport(o backend.UpOptions, placement []host.Spec, conns map[string]*dockerhost.Conn) backend.UpOptions {
	t := protocol.TransportDirect
	for _, sp := range placement {
		if conn := conns[sp.Raw]; conn != nil && publishes(o.Transport, conn) {
			t = protocol.TransportPublished
		}
	}
	o.Transport = t
	return o
}
