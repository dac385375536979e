package rfenv

import (
	"context"

	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/kube"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
)

// kubeDownWait bounds how long down waits for an environment's pods to be gone.
const kubeDownWait = protocol.DefaultKubeDownWait

// splitKube separates k8s:// specs from Docker hosts.
func splitKube(specs []host.Spec) (docker, k8s []host.Spec) {
	for _, sp := range specs {
		if sp.Kind == host.K8s {
			k8s = append(k8s, sp)
		} else {
			docker = append(docker, sp)
		}
	}
	return docker, k8s
}

// downKube deletes the environment's Deployment, Secret, ReplicaSets and pods on every k8s:// host
// among specs and waits until its pods are gone. It returns the Docker hosts left to visit and how
// many pods it removed.
func (c *Client) downKube(ctx context.Context, name string, specs []host.Spec) ([]host.Spec, int, error) {
	docker, k8s := splitKube(specs)
	removed := 0
	for _, sp := range k8s {
		conn, err := c.kubeConn(sp)
		if err != nil {
			return docker, removed, err
		}
		pods, _, err := conn.Delete(ctx, name, c.store.ID())
		if err != nil {
			return docker, removed, err
		}
		removed += pods
		wctx, cancel := context.WithTimeout(ctx, kubeDownWait)
		err = conn.WaitGone(wctx, kube.Selector(name, c.store.ID()))
		cancel()
		if err != nil {
			return docker, removed, err
		}
	}
	return docker, removed, nil
}

// pruneKube removes rfenv objects of this state directory on the k8s:// hosts among specs whose
// environment the state file does not know: Deployments, Secrets, ReplicaSets and pods.
func (c *Client) pruneKube(ctx context.Context, f *state.File, specs []host.Spec) ([]host.Spec, []Orphan, error) {
	docker, k8s := splitKube(specs)
	var orphans []Orphan
	for _, sp := range k8s {
		conn, err := c.kubeConn(sp)
		if err != nil {
			return docker, orphans, err
		}
		items, err := conn.ListManaged(ctx, c.store.ID())
		if err != nil {
			return docker, orphans, err
		}
		envs := map[string]bool{}
		for _, it := range items {
			if _, known := f.Environments[it.Env]; known || it.Env == "" {
				continue
			}
			orphans = append(orphans, Orphan{Host: sp.Raw, Name: it.Kind + "/" + it.Name, Env: it.Env})
			envs[it.Env] = true
		}
		for env := range envs {
			if _, _, err := conn.Delete(ctx, env, c.store.ID()); err != nil {
				return docker, orphans, err
			}
			wctx, cancel := context.WithTimeout(ctx, kubeDownWait)
			err := conn.WaitGone(wctx, kube.Selector(env, c.store.ID()))
			cancel()
			if err != nil {
				return docker, orphans, err
			}
		}
	}
	return docker, orphans, nil
}
