package rfenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestE2EDockerReapsOrphans: a Docker replica's orphaned processes are reaped (docker-init is PID 1),
// the behaviour Kubernetes pods now match (issue 11, defect 7; see pkg/kube TestE2EK8sReapsOrphans).
func TestE2EDockerReapsOrphans(t *testing.T) {
	ctx := context.Background()
	dir := e2e.StateDir(t)
	c, err := rfenv.New(rfenv.WithStateDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env, err := c.Up(ctx, e2e.Image(t, "reaper"), rfenv.WithName(uniqueName("reaper")))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Release()
	var pid, made, zombies int
	if err := env.CallInto(ctx, "pid", nil, &pid); err != nil || pid == 1 {
		t.Fatalf("the shim's PID is %d (%v): want an init as PID 1", pid, err)
	}
	if err := env.CallInto(ctx, "orphan", map[string]int{"n": 3}, &made); err != nil || made != 3 {
		t.Fatalf("orphan(3) = %d, %v", made, err)
	}
	e2e.Eventually(t, 60*time.Second, "the orphans to be reaped", func() bool {
		if err := env.CallInto(ctx, "zombies", nil, &zombies); err != nil {
			t.Fatal(err)
		}
		return zombies == 0
	})
}
