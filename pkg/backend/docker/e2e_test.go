package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"testing"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// newTestBackend is the Docker backend over a fresh state directory, as the library makes it.
func newTestBackend(t *testing.T) (*Backend, *state.Store, *dockerhost.Conn) {
	t.Helper()
	e2e.Docker(t)
	st, err := state.Open(e2e.StateDir(t))
	if err != nil {
		t.Fatal(err)
	}
	hosts := dockerhost.NewConnector(dockerhost.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { hosts.Close() })
	b := New(backend.Deps{Store: st, Hosts: hosts, Log: slog.New(slog.DiscardHandler)})
	conn, err := b.conn(context.Background(), host.Spec{Kind: host.Local, Raw: host.LocalName})
	if err != nil {
		t.Fatal(err)
	}
	return b, st, conn
}

// TestE2EPruneListsBeforeState (issue 11, defect 3): an up that records its entry and starts its
// containers while prune runs keeps them. Prune used to read the state first and list the
// containers after, so an up between the two had its fresh containers removed as orphans. Here the
// up happens right after prune's state read: it records its entry, then starts a container.
func TestE2EPruneListsBeforeState(t *testing.T) {
	ctx := context.Background()
	b, st, conn := newTestBackend(t)
	name := uniqueName("racer")
	local := []host.Spec{conn.Spec}
	var started string
	known := func(ctx context.Context) (map[string]bool, error) {
		f, err := st.Load(ctx) // what prune sees: the up has not recorded its entry yet
		if err != nil {
			return nil, err
		}
		snapshot := map[string]bool{}
		for n := range f.Environments {
			snapshot[n] = true
		}
		// The up: records its entry, then starts its container.
		if err := st.Update(ctx, func(f *state.File) error {
			f.Environments[name] = &state.Environment{Name: name, Backend: state.BackendDocker, Hosts: []string{host.LocalName}}
			return nil
		}); err != nil {
			return nil, err
		}
		id, err := containers.Create(ctx, conn, containers.Spec{Env: name, Index: 0, Image: dockertest.BaseImage(), StateID: st.ID(), ConfigHash: "h"})
		if err != nil {
			return nil, err
		}
		started = id
		return snapshot, nil
	}
	// An orphan that no entry owns, to show prune does remove orphans.
	orphan := uniqueName("orphan")
	oid, err := containers.Create(ctx, conn, containers.Spec{Env: orphan, Index: 0, Image: dockertest.BaseImage(), StateID: st.ID(), ConfigHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	removed, err := b.Prune(ctx, local, known)
	if err != nil {
		t.Fatal(err)
	}
	if started == "" {
		t.Fatal("the concurrent up never ran")
	}
	left := map[string]bool{}
	for _, s := range e2e.List(t, conn.Docker, st.ID()) {
		left[s.ID] = true
	}
	if !left[started] {
		t.Errorf("prune removed the container of %s, whose up recorded its entry during the prune (removed: %+v)", name, removed)
	}
	if left[oid] || len(removed) != 1 || removed[0].ID != oid {
		t.Errorf("the orphan %s: still there %v, prune reported %+v", orphan, left[oid], removed)
	}
}
