package rfenv_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// uniqueName is a per-run environment name, so that leftovers of a killed run never collide.
func uniqueName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// TestE2EDownRereadsEntryUnderLock (issue 11, defect 4): down reads the environment's entry after
// taking its lock. Here the entry is an attached one when down starts; while down waits for the lock,
// another process forgets it and brings up real replicas under the same name. Down must remove
// those, not take them for attached servers and forget the entry over running containers.
func TestE2EDownRereadsEntryUnderLock(t *testing.T) {
	ctx := context.Background()
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	tag := e2e.Image(t, "actor")
	name := uniqueName("down")
	c, err := rfenv.New(rfenv.WithStateDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Store().Update(ctx, func(f *state.File) error {
		f.Environments[name] = &state.Environment{Name: name, Attached: true, Backend: state.BackendAttached, Type: "function",
			Hosts: []string{rfenv.AttachedHost}, Instances: []state.Instance{{Index: 0, Host: rfenv.AttachedHost, URL: "http://127.0.0.1:9"}}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	other, err := rfenv.New(rfenv.WithStateDir(dir)) // the other process
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ran := false
	defer rfenv.SetDownLocking(func(n string) {
		if n != name || ran {
			return
		}
		ran = true
		if _, err := other.Down(ctx, []string{name}, rfenv.DownOptions{}); err != nil {
			t.Errorf("other down: %v", err)
		}
		env, err := other.Up(ctx, tag, rfenv.WithName(name), rfenv.WithReplicas(2))
		if err != nil {
			t.Errorf("other up: %v", err)
			return
		}
		env.Release()
	})()

	res, err := c.Down(ctx, []string{name}, rfenv.DownOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatal("the concurrent up never ran")
	}
	if res[0].Attached || res[0].Removed != 2 || !res[0].Forgotten {
		t.Errorf("down = %+v, want 2 containers removed and the entry forgotten", res[0])
	}
	for _, s := range e2e.List(t, docker, state.StateID(dir)) {
		if s.Labels[containers.LabelEnv] == name {
			t.Errorf("container %s of %s left running after down", s.Names, name)
		}
	}
}

// TestAttachTypeValidated (issue 11, defect 8): an unknown --type is a usage error, found before any
// server is contacted.
func TestAttachTypeValidated(t *testing.T) {
	c, err := rfenv.New(rfenv.WithStateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.Attach(ctx, "api", []string{"http://127.0.0.1:9"}, rfenv.AttachOptions{Type: "grpc"})
	if !errors.Is(err, errs.Usage) {
		t.Fatalf("attach --type grpc: %v, want a usage error", err)
	}
	for _, kind := range []string{"function", "http"} {
		_, err = c.Attach(ctx, "api", []string{"http://127.0.0.1:9"}, rfenv.AttachOptions{Type: kind})
		if errors.Is(err, errs.Usage) {
			t.Errorf("attach --type %s refused as usage: %v", kind, err)
		}
	}
}
