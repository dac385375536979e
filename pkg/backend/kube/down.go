package kube

import (
	"context"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/host"
	kapi "github.com/rfenv/rfenv/pkg/kube"
	"github.com/rfenv/rfenv/pkg/protocol"
)

// kubeDownWait bounds how long down waits for an environment's pods to be gone.
const kubeDownWait = protocol.DefaultKubeDownWait

// downKube deletes the environment's Deployment, Secret, ReplicaSets and pods on every k8s:// host
// and waits until its pods are gone. It returns how
// many pods it removed.
func (c *Backend) downKube(ctx context.Context, name string, k8s []host.Spec) (int, error) {
	removed := 0
	for _, sp := range k8s {
		conn, err := c.kubeConn(sp)
		if err != nil {
			return removed, err
		}
		pods, _, err := conn.Delete(ctx, name, c.store.ID())
		if err != nil {
			return removed, err
		}
		removed += pods
		wctx, cancel := context.WithTimeout(ctx, kubeDownWait)
		err = conn.WaitGone(wctx, kapi.Selector(name, c.store.ID()))
		cancel()
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// pruneKube removes rfenv objects of this state directory on the k8s:// hosts among specs whose
// environment the state file does not know: Deployments, Secrets, ReplicaSets and pods.
func (c *Backend) pruneKube(ctx context.Context, k8s []host.Spec, known func(context.Context) (map[string]bool, error)) ([]backend.Orphan, error) {
	var orphans []backend.Orphan
	for _, sp := range k8s {
		conn, err := c.kubeConn(sp)
		if err != nil {
			return orphans, err
		}
		items, err := conn.ListManaged(ctx, c.store.ID())
		if err != nil {
			return orphans, err
		}
		// Listed first, the state read after: an up that records its entry meanwhile keeps its pods.
		knownEnvs, err := known(ctx)
		if err != nil {
			return orphans, err
		}
		envs := map[string]bool{}
		for _, it := range items {
			if knownEnvs[it.Env] || it.Env == "" {
				continue
			}
			orphans = append(orphans, backend.Orphan{Host: sp.Raw, Name: it.Kind + "/" + it.Name, Env: it.Env})
			envs[it.Env] = true
		}
		for env := range envs {
			if _, _, err := conn.Delete(ctx, env, c.store.ID()); err != nil {
				return orphans, err
			}
			wctx, cancel := context.WithTimeout(ctx, kubeDownWait)
			err := conn.WaitGone(wctx, kapi.Selector(env, c.store.ID()))
			cancel()
			if err != nil {
				return orphans, err
			}
		}
	}
	return orphans, nil
}
