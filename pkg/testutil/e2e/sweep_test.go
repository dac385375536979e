package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
)

// TestE2ESweepLeftovers: a container labelled with the state directory of a test process that is
// gone (a killed run) is removed by the next run's sweep; one of a live process is kept.
func TestE2ESweepLeftovers(t *testing.T) {
	cli := Docker(t)
	ctx := context.Background()
	create := func(id string) string {
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{Image: dockertest.BaseImage(), Cmd: []string{"true"},
				Labels: map[string]string{containers.LabelState: id, containers.LabelManaged: "true"}},
			Name: Name("sweep-" + id[:4]),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true}) })
		return res.ID
	}
	// A killed run: its process is gone (a PID that cannot exist) and its directory remains.
	deadDir := t.TempDir()
	deadID := state.StateID(deadDir)
	dead := create(deadID)
	writeReg(t, deadID, registration{Dir: deadDir, PID: 1 << 30})
	// A live run: this process.
	liveDir := t.TempDir()
	liveID := state.StateID(liveDir)
	live := create(liveID)
	defer register(liveID, liveDir)()

	if n := sweepLeftovers(cli); n < 1 {
		t.Fatalf("the sweep removed %d containers, want the killed run's", n)
	}
	if _, err := cli.ContainerInspect(ctx, dead, client.ContainerInspectOptions{}); err == nil {
		t.Error("the killed run's container is still there")
	}
	if _, err := cli.ContainerInspect(ctx, live, client.ContainerInspectOptions{}); err != nil {
		t.Errorf("the live run's container was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(registryDir(), deadID+".json")); !os.IsNotExist(err) {
		t.Errorf("the killed run's registration is still there: %v", err)
	}
}

func writeReg(t *testing.T, id string, r registration) {
	t.Helper()
	if err := os.MkdirAll(registryDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	if err := os.WriteFile(filepath.Join(registryDir(), id+".json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}
