package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
)

// squatters numbers the containers MoveContainer starts, for unique names.
var squatters atomic.Int64

// MoveContainer gives a running container another bridge address, the way it happens to users:
// it is stopped, another container takes its address, and it is started again. The squatter stays
// (labelled with the state directory, so the test's clean-up removes it). It returns the new address.
func MoveContainer(t *testing.T, docker *client.Client, stateID, id, old string) string {
	t.Helper()
	ctx := context.Background()
	timeout := 5
	if _, err := docker.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	// Docker hands out the lowest free address: squatters fill the holes below the old address until
	// one takes it (other containers on the daemon may have left holes).
	for n := 0; ; n++ {
		if n == 32 {
			t.Fatalf("32 squatters did not take the replica's old address %s", old)
		}
		res, err := docker.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name: fmt.Sprintf("%s-%d", Name("squatter"), squatters.Add(1)),
			Config: &container.Config{
				Image:  dockertest.BaseImage(),
				Cmd:    []string{"sleep", "600"},
				Labels: map[string]string{containers.LabelState: stateID},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := docker.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		if containers.Address(Inspect(t, docker, res.ID), "").String() == old {
			break
		}
	}
	if _, err := docker.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	now := containers.Address(Inspect(t, docker, id), "")
	if !now.IsValid() || now.String() == old {
		t.Fatalf("container %s came back at %s, its old address %s: cannot show a move", id, now, old)
	}
	return now.String()
}

// HealthOK says whether a shim answers /health at addr:port.
func HealthOK(addr string, port int) bool {
	cl := &http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + net.JoinHostPort(addr, strconv.Itoa(port)) + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
