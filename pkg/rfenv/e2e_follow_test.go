package rfenv_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
	"github.com/rfenv/rfenv/pkg/testutil/sshd"
)

// TestE2EFollowMovedReplica (issue 11, defect 1): a replica whose container comes back at a new
// address (docker stop/start) is followed — by stats and by a call from a fresh process, which find
// it by its container ID, check its token there and record the new address for everyone after.
func TestE2EFollowMovedReplica(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		dir := e2e.StateDir(t)
		testFollow(t, dir, func() *rfenv.Client {
			c, err := rfenv.New(rfenv.WithStateDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}, nil)
	})
	// Over SSH the container is inspected, and its token checked, through the host's connection.
	t.Run("ssh", func(t *testing.T) {
		dir := e2e.StateDir(t)
		srv := sshd.Start(t)
		testFollow(t, dir, func() *rfenv.Client { return sshLibClient(t, dir, srv) }, []string{srv.Target("")})
	})
}

func testFollow(t *testing.T, dir string, newClient func() *rfenv.Client, hosts []string) {
	ctx := context.Background()
	docker := e2e.Docker(t)
	tag := e2e.Image(t, "actor")
	name := uniqueName("moved")
	c := newClient()
	env, err := c.Up(ctx, tag, rfenv.WithName(name), rfenv.WithHosts(hosts...))
	if err != nil {
		t.Fatal(err)
	}
	in := env.Record().Instances[0]
	env.Release()

	// Stats from another process follows it.
	now := e2e.MoveContainer(t, docker, state.StateID(dir), in.ContainerID, in.Address)
	awaitReady(t, c, name)
	c2 := newClient()
	env2, err := c2.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	st := env2.Stats(ctx)
	env2.Release()
	if st.HealthyInstances != 1 || st.Instances[0].Address != now {
		t.Fatalf("stats after the move: %+v, want replica 0 healthy at %s", st.Instances, now)
	}
	if rec, _ := c.Store().Get(ctx, name); rec.Instances[0].Address != now {
		t.Errorf("state file records %s, want the new address %s", rec.Instances[0].Address, now)
	}

	// A call from yet another process follows it too (a single replica: without following, no
	// replica could take the call).
	again := e2e.MoveContainer(t, docker, state.StateID(dir), in.ContainerID, now)
	awaitReady(t, c, name)
	c3 := newClient()
	env3, err := c3.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer env3.Release()
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	res, err := env3.Call(cctx, "add", map[string]any{"a": 2, "b": 3})
	if err != nil {
		t.Fatalf("call after the move: %v", err)
	}
	var sum int
	if json.Unmarshal(res, &sum) != nil || sum != 5 {
		t.Errorf("add = %s", res)
	}
	if rec, _ := c.Store().Get(ctx, name); rec.Instances[0].Address != again {
		t.Errorf("state file records %s after the call, want %s", rec.Instances[0].Address, again)
	}
}

// awaitReady waits until the restarted replica's server answers at its container's current address
// (a moved replica is followed only once it serves there).
func awaitReady(t *testing.T, c *rfenv.Client, name string) {
	t.Helper()
	docker := e2e.Docker(t)
	rec, err := c.Store().Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	id := rec.Instances[0].ContainerID
	e2e.Eventually(t, 60*time.Second, "the restarted replica to serve", func() bool {
		r := e2e.Inspect(t, docker, id)
		return r.State != nil && r.State.Running && r.State.Health == nil && e2e.HealthOK(containers.Address(r, "").String(), rec.Port)
	})
}
