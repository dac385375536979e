package kube_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestE2EK8sReapsOrphans (issue 11, defect 7): a pod's orphaned processes are reaped (its PID 1 is
// the pause process of a shared process namespace, not the shim), as docker-init does on Docker.
func TestE2EK8sReapsOrphans(t *testing.T) {
	requireCluster(t)
	c := newClient(t)
	o := rfenv.UpOptions{Name: e2e.Name("k8s-reaper"), Replicas: 1, Hosts: []string{hostSpec}, ReadyTimeout: 3 * time.Minute}
	env, err := c.Up(context.Background(), image(t, "reaper"), rfenv.WithUpOptions(o))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Release()
	ctx := context.Background()
	var pid int
	if err := env.CallInto(ctx, "pid", nil, &pid); err != nil {
		t.Fatal(err)
	}
	if pid == 1 {
		t.Errorf("the shim runs as PID 1: nothing reaps the pod's orphans")
	}
	var made int
	if err := env.CallInto(ctx, "orphan", map[string]int{"n": 3}, &made); err != nil || made != 3 {
		t.Fatalf("orphan(3) = %d, %v", made, err)
	}
	var zombies int
	e2e.Eventually(t, 60*time.Second, "the orphans to be reaped", func() bool {
		if err := env.CallInto(ctx, "zombies", nil, &zombies); err != nil {
			t.Fatal(err)
		}
		return zombies == 0
	})
}

// TestE2EK8sHashIgnoresLocalDaemon (issue 11, defect 5): the same up from a machine whose Docker
// daemon does not have the image (here: no daemon at all) keeps the running pods instead of
// reporting a conflict; a changed --pull-policy is a change of configuration.
func TestE2EK8sHashIgnoresLocalDaemon(t *testing.T) {
	requireCluster(t)
	c := newClient(t)
	name := e2e.Name("k8s-hash")
	env := up(t, c, name, 1)
	before := env.Record()

	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock") // another machine: no image, no daemon
	other, err := rfenv.New(rfenv.WithStateDir(c.Store().Dir()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	o := rfenv.UpOptions{Name: name, Replicas: 1, Hosts: []string{hostSpec}, ReadyTimeout: 3 * time.Minute}
	again, err := other.Up(context.Background(), image(t, "actor"), rfenv.WithUpOptions(o))
	if err != nil {
		t.Fatalf("the same up without the image on the local daemon: %v", err)
	}
	defer again.Release()
	if got := again.Record(); got.ConfigHash != before.ConfigHash || got.Instances[0].ContainerName != before.Instances[0].ContainerName {
		t.Errorf("the same up changed the environment: hash %s → %s, pod %s → %s", before.ConfigHash, got.ConfigHash,
			before.Instances[0].ContainerName, got.Instances[0].ContainerName)
	}
	o.PullPolicy = "Never"
	_, err = other.Up(context.Background(), image(t, "actor"), rfenv.WithUpOptions(o))
	var conflict *rfenv.ConfigConflictError
	if !errors.As(err, &conflict) {
		t.Errorf("up with another --pull-policy: %v, want a configuration conflict", err)
	}
}
