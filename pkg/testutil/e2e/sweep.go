package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/containers"
)

// A test's state directory is registered in registryDir while the test runs, with the test
// process's PID, so that a later run can tell what a killed run left behind: containers labelled
// with a state directory that no longer exists, or whose test process is gone, are leftovers (a
// run killed by its timeout never runs its cleanups). Each test process sweeps them once, before
// its first state directory.
type registration struct {
	Dir string `json:"dir"`
	PID int    `json:"pid"`
}

func registryDir() string { return filepath.Join(os.TempDir(), "rfenv-test-states") }

var sweepOnce sync.Once

// register records dir (whose state ID is id) for the sweeps of later runs; the returned function
// forgets it at the end of the test.
func register(id, dir string) func() {
	if err := os.MkdirAll(registryDir(), 0o700); err != nil {
		return func() {}
	}
	p := filepath.Join(registryDir(), id+".json")
	b, _ := json.Marshal(registration{Dir: dir, PID: os.Getpid()})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return func() {}
	}
	// The registration outlives the test: a create that timed out on the client can still complete
	// in the daemon after the test's clean-up (seen in CI on a loaded machine), and only a later
	// sweep, which finds this process gone, removes that container and then the registration.
	return func() {}
}

// sweepLeftovers removes the containers of registered state directories whose test is over without
// having cleaned up, and reports how many it removed.
func sweepLeftovers(cli *client.Client) int {
	entries, err := os.ReadDir(registryDir())
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	removed := 0
	for _, e := range entries {
		p := filepath.Join(registryDir(), e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var r registration
		if json.Unmarshal(b, &r) != nil || !leftover(r) {
			continue
		}
		id := e.Name()[:len(e.Name())-len(".json")]
		res, err := cli.ContainerList(ctx, client.ContainerListOptions{
			All:     true,
			Filters: make(client.Filters).Add("label", containers.LabelState+"="+id),
		})
		if err != nil {
			continue
		}
		for _, c := range res.Items {
			if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err == nil {
				removed++
			}
		}
		os.RemoveAll(r.Dir)
		os.Remove(p)
	}
	return removed
}

// leftover: the registering process is gone, or its state directory is.
func leftover(r registration) bool {
	if r.PID == os.Getpid() {
		return false
	}
	if _, err := os.Stat(r.Dir); errors.Is(err, os.ErrNotExist) {
		return true
	}
	return r.PID <= 0 || errors.Is(syscall.Kill(r.PID, 0), syscall.ESRCH)
}
