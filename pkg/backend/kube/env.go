package kube

import (
	"context"
	"net"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	kapi "github.com/rfenv/rfenv/pkg/kube"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// kubeSpec returns the environment's Kubernetes host, if it runs on one.
func kubeSpec(rec *state.Environment) (host.Spec, bool) {
	for _, h := range rec.Hosts {
		if sp, err := host.Parse(h); err == nil && sp.Kind == host.K8s {
			return sp, true
		}
	}
	for _, in := range rec.Instances {
		if sp, err := host.Parse(in.Host); err == nil && sp.Kind == host.K8s {
			return sp, true
		}
	}
	return host.Spec{}, false
}

// kubeConn returns the process's connection to a cluster namespace.
func (c *Backend) kubeConn(spec host.Spec) (*kapi.Conn, error) { return c.kubes.Get(spec) }

// kubeEnv keeps a Kubernetes environment's pool in step with its pods: pods the Deployment replaces
// or adds join, terminating and deleted ones leave (their dialers refuse new connections at once, so
// the pool fails over before sending anything; calls in flight finish during the pod's grace period).
type kubeEnv struct {
	conn    *kapi.Conn
	name    string
	stateID string
	port    int
	host    string
	hash    string // pods of another configuration (an older rollout) are not called

	mu      sync.Mutex
	index   map[string]int // pod name → replica index, stable for the life of the process
	dialers map[string]*kapi.PodDialer
	stopped bool
	cancel  context.CancelFunc
	rv      string       // the resource version the watch starts from ("" for now)
	initial []corev1.Pod // the pods the endpoints were made of
}

func newKubeEnv(conn *kapi.Conn, rec *state.Environment, stateID string) *kubeEnv {
	k := &kubeEnv{conn: conn, name: rec.Name, stateID: stateID, port: rec.Port, host: conn.Spec.Raw, hash: rec.ConfigHash,
		index: map[string]int{}, dialers: map[string]*kapi.PodDialer{}}
	// Keep the indices the state file recorded, so `stats` and `logs --replica` agree with `up`.
	for _, in := range rec.Instances {
		if in.ContainerName != "" {
			k.index[in.ContainerName] = in.Index
		}
	}
	return k
}

// update maps the pods to the pool's endpoints and the state file's instances (serving pods only).
func (k *kubeEnv) update(pods []corev1.Pod) ([]pool.Endpoint, []state.Instance) {
	k.mu.Lock()
	defer k.mu.Unlock()
	present := map[string]bool{}
	used := map[int]bool{}
	for _, p := range pods {
		present[p.Name] = true
		if i, ok := k.index[p.Name]; ok {
			used[i] = true
		}
	}
	for name, d := range k.dialers {
		if !present[name] {
			d.MarkGone()
			go d.Close()
			delete(k.dialers, name)
		}
	}
	var eps []pool.Endpoint
	var ins []state.Instance
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil {
			if d := k.dialers[p.Name]; d != nil {
				d.MarkGone()
			}
			continue
		}
		if !kapi.Serving(p) || k.hash != "" && p.Annotations[kapi.AnnotationConfigHash] != k.hash {
			continue
		}
		idx, ok := k.index[p.Name]
		if !ok {
			for idx = 0; used[idx]; idx++ {
			}
			used[idx] = true
			k.index[p.Name] = idx
		}
		ep := pool.Endpoint{Index: idx, Host: k.host, Address: net.JoinHostPort(p.Status.PodIP, strconv.Itoa(k.port))}
		if !k.conn.Direct {
			d := k.dialers[p.Name]
			if d == nil {
				d = k.conn.NewPodDialer(p.Name)
				k.dialers[p.Name] = d
			}
			ep.Dialer = d
		}
		eps = append(eps, ep)
		ins = append(ins, state.Instance{Index: idx, Host: k.host, ContainerName: p.Name, Address: p.Status.PodIP, Port: k.port})
	}
	return eps, ins
}

// Start implements backend.Watcher: it follows the pods until Stop, feeding set.
func (k *kubeEnv) Start(set func([]pool.Endpoint)) {
	ctx, cancel := context.WithCancel(context.Background())
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		cancel()
		return
	}
	k.cancel = cancel
	k.mu.Unlock()
	go k.conn.WatchPods(ctx, k.name, k.stateID, k.rv, k.initial, func(pods []corev1.Pod) {
		eps, _ := k.update(pods)
		if len(eps) > 0 {
			set(eps)
		}
	})
}

// Stop implements backend.Watcher.
func (k *kubeEnv) Stop() {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	if k.cancel != nil {
		k.cancel()
	}
	for _, d := range k.dialers {
		go d.Close()
	}
}

// getKube makes an Env of a Kubernetes environment from its current pods (one list request), and
// follows them while the Env is held.
func (c *Backend) getKube(ctx context.Context, rec *state.Environment, spec host.Spec) (backend.Opened, error) {
	conn, err := c.kubeConn(spec)
	if err != nil {
		return backend.Opened{}, err
	}
	pods, rv, err := conn.ListPods(ctx, rec.Name, c.store.ID())
	if err != nil {
		return backend.Opened{}, err
	}
	ke := newKubeEnv(conn, rec, c.store.ID())
	eps, _ := ke.update(pods)
	if len(eps) == 0 {
		return backend.Opened{}, errs.New(errs.Infra, "environment %s has no ready pod on %s (namespace %s); check `kubectl get pods -l %s`, or run `rfenv up` again", rec.Name, spec, conn.Namespace, kapi.Selector(rec.Name, c.store.ID()))
	}
	ke.rv, ke.initial = rv, pods
	return backend.Opened{Env: rec, Endpoints: eps, Watcher: ke}, nil
}
