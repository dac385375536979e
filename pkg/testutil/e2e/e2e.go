// Package e2e holds what end-to-end tests share: the fixture environments under testdata/envs built
// into images once per test binary, state directories whose containers are removed after the test,
// and queries of what really runs on the daemon.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/build"
	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
)

// Root is the repository's root directory.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// EnvDir is the path of a fixture environment (testdata/envs/NAME).
func EnvDir(t testing.TB, name string) string {
	return filepath.Join(Root(t), "testdata", "envs", name)
}

// Docker returns a client of the local daemon, failing the test when there is none.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	dockertest.Require(t)
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Image builds fixture environment name (once per test binary) and returns its tag.
func Image(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if tag, ok := built[name]; ok {
		return tag
	}
	cli := Docker(t)
	tag := "rfenv-test-" + name + ":latest"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := build.Build(ctx, cli, build.Options{Dir: EnvDir(t, name), Tag: tag, BaseImage: dockertest.BaseImage()}); err != nil {
		t.Fatalf("build fixture %s: %v", name, err)
	}
	built[name] = tag
	return tag
}

// StateDir returns a fresh state directory; when the test ends, every container labelled with it is
// removed, so that a failing test leaks nothing. The first call in a test process also removes what
// killed runs left behind (see sweepLeftovers).
func StateDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	cli := Docker(t)
	sweepOnce.Do(func() {
		if n := sweepLeftovers(cli); n > 0 {
			t.Logf("removed %d containers that killed test runs left behind", n)
		}
	})
	id := state.StateID(dir)
	forget := register(id, dir)
	t.Cleanup(func() {
		defer forget()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, c := range List(t, cli, id) {
			cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
	})
	return dir
}

// List returns the containers (running or not) labelled with a state directory's ID.
func List(t testing.TB, cli *client.Client, stateID string) []container.Summary {
	t.Helper()
	res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", containers.LabelState+"="+stateID),
	})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	return res.Items
}

// Inspect returns a container's full description.
func Inspect(t testing.TB, cli *client.Client, id string) container.InspectResponse {
	t.Helper()
	res, err := cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", id, err)
	}
	return res.Container
}

// AssertLoopbackOnly fails if any of the containers publishes a port anywhere but on its host's
// 127.0.0.1 (the published transport, and auto's fallback to it, bind there and nowhere else).
func AssertLoopbackOnly(t testing.TB, cli *client.Client, ids []string) {
	t.Helper()
	for _, id := range ids {
		c := Inspect(t, cli, id)
		if c.HostConfig != nil {
			if c.HostConfig.PublishAllPorts {
				t.Errorf("container %s publishes all ports", c.Name)
			}
			for p, bs := range c.HostConfig.PortBindings {
				for _, b := range bs {
					if b.HostIP.String() != "127.0.0.1" {
						t.Errorf("container %s asks for port %s on %q, not 127.0.0.1 only", c.Name, p, b.HostIP)
					}
				}
			}
		}
		if c.NetworkSettings != nil {
			for p, bs := range c.NetworkSettings.Ports {
				for _, b := range bs {
					if b.HostIP.String() != "127.0.0.1" {
						t.Errorf("container %s has port %s bound on %s, not 127.0.0.1 only", c.Name, p, b.HostIP)
					}
				}
			}
		}
	}
}

// Patience is the least time a test waits for a condition. Waits end as soon as their condition
// holds, so a generous floor costs a passing test nothing, and it keeps a loaded CI machine (both
// cores busy, several test binaries at once) from failing a test that is merely slow.
const Patience = time.Minute

// Eventually polls cond every few milliseconds until it holds or the timeout (at least Patience)
// passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = max(timeout, Patience)
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(delay)
		delay = min(delay*2, 200*time.Millisecond)
	}
}

var _ = fmt.Sprint

// runID is random per test process, so that names made by Name never collide with a second run on
// the same daemon or with what a killed run left behind.
var runID = func() string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}()

// Name is prefix made unique to this test process: the same prefix gives the same name throughout
// one run, and a different one in every other run.
func Name(prefix string) string { return prefix + "-" + runID }
