package rfenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
)

// hostConcurrency bounds how many hosts are dialled and worked on at once.
const hostConcurrency = 8

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

// imageInfo is what up needs to know about the image.
type imageInfo struct {
	ID   string // on the first host that has it: what the state file records
	Kind string
	Port int
	// IDs is the image's ID on each host (spec → ID). A tag built on each host (`rfenv build --host a
	// --host b`) names a different image on each, and a replica must run its own host's.
	IDs map[string]string
}

// idOn is the image's ID on a host.
func (i imageInfo) idOn(spec string) string {
	if id := i.IDs[spec]; id != "" {
		return id
	}
	return i.ID
}

// existing is a container of the environment found on a host.
type existing struct {
	conn    *host.Conn
	summary container.Summary
	index   int
}

func (e existing) running() bool { return e.summary.State == container.StateRunning }

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
	if ksp, ok, err := kubeTarget(specs); err != nil {
		return nil, err
	} else if ok {
		return c.upKube(ctx, image, o, ksp) // see kube_up.go
	}
	placement := host.Place(o.Replicas, specs)

	prev, unlock, err := c.beginUp(ctx, o.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Hosts that held replicas before must be visited too, to remove what no longer belongs there.
	visit := append([]host.Spec{}, specs...)
	if prev != nil {
		for _, h := range prev.Hosts {
			if sp, err := host.Parse(h); err == nil && !containsSpec(visit, sp) {
				visit = append(visit, sp)
			}
		}
	}
	conns, err := c.connectAll(ctx, visit)
	if err != nil {
		return nil, err
	}
	img, err := c.ensureImage(ctx, image, specs, conns, o)
	if err != nil {
		return nil, err
	}
	kind := o.Type
	if kind == "" {
		kind = img.Kind
	}
	found, err := c.findExisting(ctx, o.Name, visit, conns)
	if err != nil {
		return nil, err
	}
	token := ""
	if prev != nil {
		token = prev.Token
	}
	if token == "" {
		token = c.tokenFromContainers(ctx, found)
	}
	if token == "" || o.ForceRecreate {
		token = newToken()
	}
	hash := configHash(token, img, kind, o)

	plan, err := planReplicas(o, placement, found, hash)
	if err != nil {
		return nil, err
	}
	c.dropUnresponsive(ctx, &plan, found, kind, img.Port, token, o.Name)

	// Record the environment before starting anything, so an interrupted up leaves an entry that
	// `rfenv down NAME` finds (the containers are labelled as well, for `down --orphans`).
	rec := &state.Environment{
		Name: o.Name, Image: image, ImageID: img.ID, Type: kind, Port: img.Port, Token: token,
		Balancer: o.Balancer, ConfigHash: hash, EnvKeys: envKeys(o), Hosts: specStrings(specs),
		CreatedAt: time.Now().UTC(),
	}
	if prev != nil {
		rec.CreatedAt = prev.CreatedAt
		rec.Instances = prev.Instances
	}
	if err := c.putEnv(ctx, rec); err != nil {
		return nil, err
	}

	if err := c.removeAll(ctx, plan.remove); err != nil {
		return nil, err
	}
	started, err := c.startReplicas(ctx, o, img, kind, token, hash, plan.create, conns)
	if err == nil {
		var env *Env
		if env, err = c.readyAndRecord(ctx, rec, plan.keep, started, conns, o); err == nil {
			return env, nil
		}
	}
	return nil, c.rollbackUp(ctx, o.Name, rec, plan, started, visit, conns, err)
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
	if prev != nil && prev.Attached {
		unlock()
		return nil, nil, errs.New(errs.Conflict, "%s is an attached environment (rfenv did not start it); `rfenv down %s` forgets it, then `up` can start a new one", name, name)
	}
	return prev, unlock, nil
}

// readyAndRecord waits until the started replicas are ready, then records the environment with all
// of its replicas.
func (c *Client) readyAndRecord(ctx context.Context, rec *state.Environment, keep, started []state.Instance, conns map[string]*host.Conn, o UpOptions) (*Env, error) {
	instances := append(append([]state.Instance{}, keep...), started...)
	sort.Slice(instances, func(i, j int) bool { return instances[i].Index < instances[j].Index })
	env, err := c.newEnvFromInstances(rec, instances)
	if err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, env, started, conns, o); err != nil {
		env.pool.Close()
		return nil, err
	}
	rec.Instances = instances
	if err := c.putEnv(ctx, rec); err != nil {
		env.pool.Close()
		return nil, err
	}
	env.rec = rec
	return env, nil
}

// rollbackUp undoes a failed up: it removes what this call started, records only the replicas it
// kept, and turns a cancellation into an interruption. It runs to completion even after Ctrl-C.
func (c *Client) rollbackUp(ctx context.Context, name string, rec *state.Environment, plan replicaPlan, started []state.Instance, visit []host.Spec, conns map[string]*host.Conn, upErr error) error {
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
	// A cancelled ctx (Ctrl-C) is an interruption, whatever error the cancellation surfaced as: Docker
	// calls cut short report it as infrastructure errors. A ctx deadline is not: its "not ready in
	// time" error stays.
	if errors.Is(upErr, context.Canceled) || errors.Is(ctx.Err(), context.Canceled) {
		return errs.Wrap(errs.Interrupted, &interruptedError{
			msg:   fmt.Sprintf("up %s interrupted; removed the %d container(s) it had started", name, removed),
			cause: upErr,
		})
	}
	return upErr
}

// interruptedError says what an interrupted operation cleaned up; the error that the interruption
// surfaced as (often a cut-off Docker request) stays in the chain but not in the message.
type interruptedError struct {
	msg   string
	cause error
}

func (e *interruptedError) Error() string { return e.msg }
func (e *interruptedError) Unwrap() error { return e.cause }

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

func containsSpec(list []host.Spec, s host.Spec) bool {
	for _, x := range list {
		if x.Raw == s.Raw {
			return true
		}
	}
	return false
}

func specStrings(specs []host.Spec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Raw
	}
	return out
}

func envKeys(o UpOptions) []string {
	var keys []string
	for k := range o.Env {
		keys = append(keys, k)
	}
	for k := range o.Secrets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// connectAll connects to every host, a bounded number at once. The first host that cannot be reached
// fails the whole operation, naming that host.
func (c *Client) connectAll(ctx context.Context, specs []host.Spec) (map[string]*host.Conn, error) {
	var mu sync.Mutex
	out := map[string]*host.Conn{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hostConcurrency)
	for _, sp := range specs {
		g.Go(func() error {
			conn, err := c.conn(gctx, sp)
			if err != nil {
				return err
			}
			if _, err := conn.Docker.Ping(gctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
				return errs.Wrap(errs.Infra, fmt.Errorf("host %s: the Docker daemon did not answer: %w", sp, err))
			}
			mu.Lock()
			out[sp.Raw] = conn
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// ensureImage inspects the image on every host that will run a replica, sending it from the local
// daemon to hosts that lack it.
func (c *Client) ensureImage(ctx context.Context, image string, specs []host.Spec, conns map[string]*host.Conn, o UpOptions) (imageInfo, error) {
	info := imageInfo{IDs: map[string]string{}}
	var missing []host.Spec
	if o.Pull {
		if err := c.pullAll(ctx, image, specs, conns, o.Progress); err != nil {
			return info, err
		}
	}
	for _, sp := range specs {
		res, err := conns[sp.Raw].Docker.ImageInspect(ctx, image)
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				missing = append(missing, sp)
				continue
			}
			return info, errs.Wrap(errs.Infra, fmt.Errorf("inspect image %s on %s: %w", image, sp, err))
		}
		if info.ID == "" {
			info = imageInfoFrom(res, info.IDs)
		}
		info.IDs[sp.Raw] = res.ID
	}
	for _, sp := range missing {
		if sp.Kind != host.SSH || o.NoTransfer {
			return info, errs.New(errs.NotFound, "image %s not found on %s: build it there with `rfenv build %sDIR -t %s`%s", image, sp, buildHostFlag(sp), image, transferHint(sp, o))
		}
		if err := c.transferImage(ctx, image, sp, conns, o.Progress); err != nil {
			return info, err
		}
		res, err := conns[sp.Raw].Docker.ImageInspect(ctx, image)
		if err != nil {
			return info, errs.Wrap(errs.Infra, fmt.Errorf("inspect image %s on %s after transfer: %w", image, sp, err))
		}
		if info.ID == "" {
			info = imageInfoFrom(res, info.IDs)
		}
		info.IDs[sp.Raw] = res.ID
	}
	return info, nil
}

// buildHostFlag is the --host flag that builds on sp ("" for the local daemon).
func buildHostFlag(sp host.Spec) string {
	if sp.Kind == host.Local {
		return ""
	}
	return "--host " + sp.Raw + " "
}

func transferHint(sp host.Spec, o UpOptions) string {
	if sp.Kind == host.SSH && o.NoTransfer {
		return " (or drop --no-transfer to send it from the local daemon)"
	}
	return ""
}

func imageInfoFrom(res client.ImageInspectResult, ids map[string]string) imageInfo {
	info := imageInfo{ID: res.ID, Kind: pool.KindFunction, Port: protocol.DefaultPort, IDs: ids}
	if res.Config == nil {
		return info
	}
	labels := res.Config.Labels
	if t := labels[containers.ImageLabelType]; t == pool.KindHTTP || t == pool.KindFunction {
		info.Kind = t
	}
	if p, err := strconv.Atoi(labels[containers.ImageLabelPort]); err == nil && p > 0 && p < 65536 {
		info.Port = p
	} else if len(res.Config.ExposedPorts) == 1 {
		// A user's http image without rfenv's label: its single EXPOSEd port is the server's.
		for p := range res.Config.ExposedPorts {
			if n, err := strconv.Atoi(strings.Split(p, "/")[0]); err == nil {
				info.Port = n
			}
		}
	}
	return info
}

// findExisting lists the environment's containers on the hosts, by label.
func (c *Client) findExisting(ctx context.Context, name string, specs []host.Spec, conns map[string]*host.Conn) ([]existing, error) {
	var mu sync.Mutex
	var out []existing
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hostConcurrency)
	for _, sp := range specs {
		g.Go(func() error {
			conn := conns[sp.Raw]
			items, err := containers.List(gctx, conn, containers.Filter{StateID: c.store.ID(), Env: name})
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range items {
				idx, err := strconv.Atoi(s.Labels[containers.LabelReplica])
				if err != nil {
					idx = -1
				}
				out = append(out, existing{conn: conn, summary: s, index: idx})
			}
			return nil
		})
	}
	return out, g.Wait()
}

// tokenFromContainers recovers the token of an environment whose state entry was lost.
func (c *Client) tokenFromContainers(ctx context.Context, found []existing) string {
	for _, e := range found {
		res, err := e.conn.Docker.ContainerInspect(ctx, e.summary.ID, client.ContainerInspectOptions{})
		if err != nil || res.Container.Config == nil {
			continue
		}
		for _, kv := range res.Container.Config.Env {
			if v, ok := strings.CutPrefix(kv, "RFENV_TOKEN="); ok {
				return v
			}
		}
	}
	return ""
}

type toRemove struct {
	conn *host.Conn
	id   string
}

type replicaPlan struct {
	keep   []state.Instance
	create []int // replica indices to start
	remove []toRemove
}

// planReplicas decides, for each replica index, whether to keep the container there, replace it or
// start one, and which containers to remove. A running replica whose configuration differs is an
// error unless ForceRecreate is set: replacing it silently could drop work in progress.
func planReplicas(o UpOptions, placement []host.Spec, found []existing, hash string) (replicaPlan, error) {
	var plan replicaPlan
	byIndex := map[int][]existing{}
	for _, e := range dedupeByContainer(found, placement) {
		byIndex[e.index] = append(byIndex[e.index], e)
	}
	var mismatched []string
	for i := range placement {
		for _, e := range byIndex[i] {
			if e.running() && e.conn.Spec.Raw == placement[i].Raw && e.summary.Labels[containers.LabelConfigHash] != hash {
				mismatched = append(mismatched, containers.Name(o.Name, i))
			}
		}
	}
	if len(mismatched) > 0 && !o.ForceRecreate {
		return plan, errs.New(errs.Conflict, "%s is running with a different image or configuration (%s); pass --force-recreate to replace its replicas, or `rfenv down %s` first", o.Name, strings.Join(mismatched, ", "), o.Name)
	}
	for i := range placement {
		kept := false
		for _, e := range byIndex[i] {
			if !kept && !o.ForceRecreate && e.running() && e.conn.Spec.Raw == placement[i].Raw && e.summary.Labels[containers.LabelConfigHash] == hash {
				addr := summaryAddress(e.summary, o.Network)
				if addr != "" {
					kept = true
					plan.keep = append(plan.keep, state.Instance{
						Index: i, Host: e.conn.Spec.Raw, ContainerID: e.summary.ID,
						ContainerName: containers.Name(o.Name, i), Address: addr,
					})
					continue
				}
			}
			plan.remove = append(plan.remove, toRemove{conn: e.conn, id: e.summary.ID})
		}
		if !kept {
			plan.create = append(plan.create, i)
		}
	}
	for idx, es := range byIndex {
		if idx < 0 || idx >= len(placement) {
			for _, e := range es {
				plan.remove = append(plan.remove, toRemove{conn: e.conn, id: e.summary.ID})
			}
		}
	}
	return plan, nil
}

// dedupeByContainer keeps one sighting of each container. Two host specs can name one daemon
// (localhost and ssh://this-machine); a container seen through both belongs to the host its replica
// was placed on, and must not be taken for a stray on the other.
func dedupeByContainer(found []existing, placement []host.Spec) []existing {
	best := map[string]int{}
	var out []existing
	for _, e := range found {
		i, seen := best[e.summary.ID]
		if !seen {
			best[e.summary.ID] = len(out)
			out = append(out, e)
			continue
		}
		if e.index >= 0 && e.index < len(placement) && e.conn.Spec.Raw == placement[e.index].Raw {
			out[i] = e
		}
	}
	return out
}

func summaryAddress(s container.Summary, networkName string) string {
	if s.NetworkSettings == nil {
		return ""
	}
	if networkName == "" {
		networkName = protocol.DefaultNetwork
	}
	if ep, ok := s.NetworkSettings.Networks[networkName]; ok && ep != nil && ep.IPAddress.IsValid() {
		return ep.IPAddress.String()
	}
	return ""
}

// removeAll removes containers in parallel.
func (c *Client) removeAll(ctx context.Context, items []toRemove) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, it := range items {
		g.Go(func() error { return containers.Remove(gctx, it.conn, it.id) })
	}
	return g.Wait()
}

// startReplicas creates and starts the given replica indices in parallel.
func (c *Client) startReplicas(ctx context.Context, o UpOptions, img imageInfo, kind, token, hash string, indices []int, conns map[string]*host.Conn) ([]state.Instance, error) {
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
			Env: o.Name, Index: i, Image: img.idOn(placement[i].Raw), Port: img.Port,
			Vars: append(append([]string{}, vars...),
				"RFENV_TOKEN="+token, "RFENV_PORT="+strconv.Itoa(img.Port),
				"RFENV_ENV_NAME="+o.Name, "RFENV_REPLICA="+strconv.Itoa(i)),
			Secrets: o.Secrets, Memory: o.Memory, NanoCPUs: o.NanoCPUs, Network: o.Network,
			Volumes: o.Volumes, GPUs: o.GPUs, Labels: o.Labels, StateID: c.store.ID(), ConfigHash: hash,
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
		mu.Lock()
		for k := range out {
			if out[k].ContainerID == id {
				out[k].Address = r.Address.String()
			}
		}
		mu.Unlock()
		return nil
	})
	return out, err
}

// forHosts runs fn for each item, grouped by the host hostOf names: a host's items run together, and
// at most limit hosts are worked on at once. The first error cancels the rest and is returned.
func forHosts(ctx context.Context, limit int, items []int, hostOf func(int) string, fn func(ctx context.Context, item int) error) error {
	var hosts []string
	byHost := map[string][]int{}
	for _, it := range items {
		h := hostOf(it)
		if len(byHost[h]) == 0 {
			hosts = append(hosts, h)
		}
		byHost[h] = append(byHost[h], it)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for _, h := range hosts {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err // another host failed while this one waited for its turn
			}
			hg, hctx := errgroup.WithContext(gctx)
			for _, it := range byHost[h] {
				hg.Go(func() error { return fn(hctx, it) })
			}
			return hg.Wait()
		})
	}
	return g.Wait()
}

// waitReady waits for the started replicas to answer /health, watching for containers that exit.
func (c *Client) waitReady(ctx context.Context, env *Env, started []state.Instance, conns map[string]*host.Conn, o UpOptions) error {
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
			probe := func(pctx context.Context) (bool, error) {
				h, err := env.pool.HealthOf(pctx, in.Index)
				if err != nil {
					return false, err
				}
				if h.Status == "failed" {
					msg := h.Status
					if h.Error != nil {
						msg = h.Error.Type + ": " + h.Error.Message
						if tb := strings.TrimSpace(h.Error.Traceback); tb != "" && h.Error.Type == "SyntaxError" {
							msg += "\n" + tb
						}
					}
					return false, &containers.FatalProbeError{Message: msg}
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
func (c *Client) dropUnresponsive(ctx context.Context, plan *replicaPlan, found []existing, kind string, port int, token, name string) {
	if len(plan.keep) == 0 {
		return
	}
	for i := range plan.keep {
		plan.keep[i].Port = port
	}
	env, err := c.newEnvFromInstances(&state.Environment{Name: name, Type: kind, Port: port, Token: token}, plan.keep)
	if err != nil {
		return
	}
	defer env.pool.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	health := env.pool.Probe(pctx)
	var keep []state.Instance
	for i, in := range plan.keep {
		h := health[i]
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
