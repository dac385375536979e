package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	kapi "github.com/rfenv/rfenv/pkg/kube"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
)

func kubeCheckOptions(o *backend.UpOptions) (gpus int, err error) {
	if len(o.Volumes) > 0 {
		return 0, errs.New(errs.Usage, "-v/--volume is not supported on k8s:// hosts (pods do not see this machine's files); bake data into the image")
	}
	if o.Network != "" {
		return 0, errs.New(errs.Usage, "--network is a Docker option; on k8s:// hosts pods use the cluster's network")
	}
	if o.GPUs != "" {
		n, err := strconv.Atoi(o.GPUs)
		if err != nil || n < 0 {
			return 0, errs.New(errs.Usage, "--gpus %q: on k8s:// hosts give a count (it becomes the nvidia.com/gpu limit)", o.GPUs)
		}
		gpus = n
	}
	if o.Transport == protocol.TransportPublished {
		return 0, errs.New(errs.Usage, "transport %s is for Docker hosts; pods on k8s:// hosts are reached through the API server or at their pod IPs", o.Transport)
	}
	if o.Pull && o.PullPolicy == "" {
		o.PullPolicy = string(corev1.PullAlways) // --pull: the cluster pulls the image for each pod
	}
	if o.PullPolicy == "" {
		o.PullPolicy = protocol.DefaultPullPolicy // so that the default and its explicit value hash alike
	}
	switch corev1.PullPolicy(o.PullPolicy) {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return 0, errs.New(errs.Usage, "--pull-policy %q: use IfNotPresent, Always or Never", o.PullPolicy)
	}
	return gpus, kapi.ValidateName(o.Name)
}

// localImageInfo reads the image's labels from the local Docker daemon when it has the image (it is
// usually where the image was built); otherwise the defaults apply, and --type can say http.
func (c *Backend) localImageInfo(ctx context.Context, image string) backend.ImageInfo {
	info := backend.ImageInfo{ID: image, Kind: pool.KindFunction, Port: protocol.DefaultPort}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := c.hosts.Get(ctx, host.Spec{Kind: host.Local, Raw: host.LocalName})
	if err != nil {
		return info
	}
	res, err := conn.Docker.ImageInspect(ctx, image)
	if err != nil {
		return info
	}
	return backend.ImageInfoFrom(res, nil)
}

// upKube is Up on a Kubernetes cluster: a Deployment of the image, its Secret, and a wait until the
// pods serve.
func (c *Backend) Up(ctx context.Context, req backend.UpRequest) (backend.Opened, error) {
	o, image, spec, prev := req.Options, req.Image, req.Hosts[0], req.Prev
	if len(req.Hosts) != 1 {
		return backend.Opened{}, errs.New(errs.Usage, "a k8s:// host cannot be combined with other hosts in one environment; give it alone (the cluster places the replicas)")
	}
	gpus, err := kubeCheckOptions(&o)
	if err != nil {
		return backend.Opened{}, err
	}
	if prev != nil {
		if psp, ok := kubeSpec(prev); !ok || psp.Raw != spec.Raw {
			return backend.Opened{}, errs.New(errs.Conflict, "%s already runs on %s; `rfenv down %s` first to move it to %s", o.Name, strings.Join(prev.Hosts, ", "), o.Name, spec)
		}
	}
	conn, err := c.kubeConn(spec)
	if err != nil {
		return backend.Opened{}, err
	}
	stateID := c.store.ID()
	img := c.localImageInfo(ctx, image)
	kind := o.Type
	if kind == "" {
		kind = img.Kind
	}
	ex, err := conn.Find(ctx, o.Name, stateID)
	if err != nil {
		return backend.Opened{}, err
	}
	token := ""
	if prev != nil {
		token = prev.Token
	}
	if token == "" {
		token = ex.Token()
	}
	if token == "" || o.ForceRecreate {
		token = backend.NewToken()
	}
	hash := kubeHash(token, image, img, kind, o)
	if ex.Deployment != nil && ex.ConfigHash() != hash && !o.ForceRecreate {
		return backend.Opened{}, &backend.ConfigConflictError{Env: o.Name, Where: spec.Raw}
	}

	rec := backend.NewEntry(backend.KindKube, o, image, img, kind, token, hash, []string{spec.Raw}, prev)
	if err := c.putEnv(ctx, rec); err != nil {
		return backend.Opened{}, err
	}

	vars := map[string]string{"RFENV_TOKEN": token}
	for _, kv := range backend.ShimVars(o) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	for k, v := range o.Env {
		vars[k] = v
	}
	for k, v := range o.Secrets {
		vars[k] = v
	}
	ks := kapi.Spec{
		Env: o.Name, StateID: stateID, Image: image, PullPolicy: corev1.PullPolicy(o.PullPolicy),
		Replicas: o.Replicas, Port: img.Port, HTTP: kind == pool.KindHTTP, Vars: vars, ConfigHash: hash,
		NanoCPUs: o.NanoCPUs, Memory: o.Memory, GPUs: gpus, Labels: o.Labels,
	}
	created := ex.Deployment == nil
	switch {
	case ex.Deployment == nil || ex.Secret == nil || ex.ConfigHash() != hash:
		_, err = conn.Apply(ctx, ks, ex)
	case ex.Replicas() != o.Replicas:
		_, err = conn.Scale(ctx, o.Name, o.Replicas)
	}
	if err == nil {
		var op backend.Opened
		op, err = c.waitKube(ctx, conn, rec, o, hash)
		if err == nil {
			return op, nil
		}
	}

	// Failure: remove what this call created, or put the replica count back.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	switch {
	case created:
		if _, _, derr := conn.Delete(cctx, o.Name, stateID); derr != nil {
			c.log.Warn("clean-up after failed up", "err", derr)
		}
		if uerr := c.store.Update(cctx, func(f *state.File) error {
			delete(f.Environments, o.Name)
			return nil
		}); uerr != nil {
			c.log.Warn("state update after failed up", "err", uerr)
		}
	case ex.Replicas() != o.Replicas && ex.ConfigHash() == hash:
		if _, serr := conn.Scale(cctx, o.Name, ex.Replicas()); serr != nil {
			c.log.Warn("scale back after failed up", "err", serr)
		}
	}
	return backend.Opened{}, backend.Interrupted(ctx, err, fmt.Sprintf("up %s interrupted; removed what it had started", o.Name))
}

// waitKube waits for the pods, records them and returns the environment.
func (c *Backend) waitKube(ctx context.Context, conn *kapi.Conn, rec *state.Environment, o backend.UpOptions, hash string) (backend.Opened, error) {
	wctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
	defer cancel()
	prober := &healthProber{conn: conn, port: rec.Port, kind: rec.Type, dialers: map[string]*kapi.PodDialer{}}
	defer prober.close()
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	pods, err := conn.WaitReady(wctx, rec.Name, c.store.ID(), hash, o.Replicas, prober.probe, progress)
	if err != nil {
		return backend.Opened{}, err
	}
	ke := newKubeEnv(conn, rec, c.store.ID())
	eps, ins := ke.update(pods)
	rec.Instances = ins
	if err := c.putEnv(ctx, rec); err != nil {
		return backend.Opened{}, err
	}
	ke.initial = pods
	return backend.Opened{Env: rec, Endpoints: eps, Watcher: ke}, nil
}

// healthProber asks a running pod that is not ready yet for its /health, to fail up at once with
// the Actor's error when env.py cannot be imported or its constructor raises (the pod itself keeps
// running, so Kubernetes alone would only report it as not ready).
type healthProber struct {
	conn    *kapi.Conn
	port    int
	kind    string
	mu      sync.Mutex
	dialers map[string]*kapi.PodDialer
}

func (h *healthProber) probe(ctx context.Context, p *corev1.Pod) error {
	if h.kind == pool.KindHTTP {
		return nil // a user's server may have no /health
	}
	var d pool.ContextDialer = &net.Dialer{Timeout: 2 * time.Second}
	if !h.conn.Direct {
		h.mu.Lock()
		pd := h.dialers[p.Name]
		if pd == nil {
			pd = h.conn.NewPodDialer(p.Name)
			h.dialers[p.Name] = pd
		}
		h.mu.Unlock()
		d = pd
	}
	addr := net.JoinHostPort(p.Status.PodIP, strconv.Itoa(h.port))
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }}
	defer tr.CloseIdleConnections()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(pctx, http.MethodGet, "http://"+addr+"/health", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil // not listening yet: the readiness probe decides
	}
	defer resp.Body.Close()
	var st pool.Health
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st) != nil || st.Status != "failed" {
		return nil
	}
	return errors.New(backend.HealthFailure(st))
}

func (h *healthProber) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.dialers {
		d.Close()
	}
}

// kubeHash is the configuration hash of a Deployment. It names the image by the reference the
// cluster pulls, not by an ID from this machine's Docker daemon (which may not have the image, or
// have another build of the tag): the same up from any machine hashes alike. The pull policy is part
// of it, so that changing it is not silently ignored.
func kubeHash(token, image string, img backend.ImageInfo, kind string, o backend.UpOptions) string {
	return backend.ConfigHash(token, backend.ImageInfo{ID: image, Kind: img.Kind, Port: img.Port}, kind, o)
}
