package docker

import (
	"errors"
	"net/netip"
	"slices"
	"sort"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/host"
)

// TestPlanReplicas: which containers up keeps, which replica indices it starts and which containers
// it removes, decided from what runs — pure logic, no daemon.
func TestPlanReplicas(t *testing.T) {
	a := host.Spec{Kind: host.Local, Raw: "localhost"}
	b := host.Spec{Kind: host.SSH, Raw: "ssh://b"}
	ca, cb := &dockerhost.Conn{Spec: a}, &dockerhost.Conn{Spec: b}
	ctr := func(conn *dockerhost.Conn, id string, index int, hash string, running bool, ip string) existing {
		s := container.Summary{ID: id, Labels: map[string]string{containers.LabelConfigHash: hash}, State: container.StateExited}
		if running {
			s.State = container.StateRunning
		}
		if ip != "" {
			s.NetworkSettings = &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{
				"bridge": {IPAddress: netip.MustParseAddr(ip)},
			}}
		}
		return existing{conn: conn, summary: s, index: index}
	}
	tests := []struct {
		name      string
		placement []host.Spec
		found     []existing
		force     bool
		keep      []string // container IDs kept
		create    []int
		remove    []string
		conflict  bool
	}{
		{name: "nothing runs: start all", placement: []host.Spec{a, a}, create: []int{0, 1}},
		{name: "matching replicas are kept", placement: []host.Spec{a, a},
			found: []existing{ctr(ca, "c0", 0, "h", true, "10.0.0.2"), ctr(ca, "c1", 1, "h", true, "10.0.0.3")},
			keep:  []string{"c0", "c1"}},
		{name: "a stopped replica is replaced", placement: []host.Spec{a, a},
			found: []existing{ctr(ca, "c0", 0, "h", true, "10.0.0.2"), ctr(ca, "c1", 1, "h", false, "")},
			keep:  []string{"c0"}, create: []int{1}, remove: []string{"c1"}},
		{name: "scale down removes the extra index", placement: []host.Spec{a},
			found: []existing{ctr(ca, "c0", 0, "h", true, "10.0.0.2"), ctr(ca, "c1", 1, "h", true, "10.0.0.3")},
			keep:  []string{"c0"}, remove: []string{"c1"}},
		{name: "scale up starts the missing index", placement: []host.Spec{a, a, a},
			found: []existing{ctr(ca, "c0", 0, "h", true, "10.0.0.2")},
			keep:  []string{"c0"}, create: []int{1, 2}},
		{name: "a running replica of another configuration is a conflict", placement: []host.Spec{a},
			found: []existing{ctr(ca, "c0", 0, "old", true, "10.0.0.2")}, conflict: true},
		{name: "force recreates even matching replicas", placement: []host.Spec{a, a}, force: true,
			found:  []existing{ctr(ca, "c0", 0, "old", true, "10.0.0.2"), ctr(ca, "c1", 1, "h", true, "10.0.0.3")},
			create: []int{0, 1}, remove: []string{"c0", "c1"}},
		{name: "a stopped replica of another configuration is no conflict", placement: []host.Spec{a},
			found: []existing{ctr(ca, "c0", 0, "old", false, "")}, create: []int{0}, remove: []string{"c0"}},
		{name: "a replica moved to another host is replaced there", placement: []host.Spec{a, b},
			found: []existing{ctr(ca, "c0", 0, "h", true, "10.0.0.2"), ctr(ca, "c1", 1, "h", true, "10.0.0.3")},
			keep:  []string{"c0"}, create: []int{1}, remove: []string{"c1"}},
		{name: "a running replica without an address is replaced", placement: []host.Spec{a},
			found: []existing{ctr(ca, "c0", 0, "h", true, "")}, create: []int{0}, remove: []string{"c0"}},
		{name: "one daemon under two specs: the placed sighting wins", placement: []host.Spec{a, b},
			found: []existing{ctr(ca, "c1", 1, "h", true, "10.0.0.3"), ctr(cb, "c1", 1, "h", true, "10.0.0.3"), ctr(ca, "c0", 0, "h", true, "10.0.0.2")},
			keep:  []string{"c0", "c1"}},
		{name: "two containers for one index: one kept, the other removed", placement: []host.Spec{a},
			found: []existing{ctr(ca, "c0", 0, "h", true, "10.0.0.2"), ctr(ca, "c0b", 0, "h", true, "10.0.0.4")},
			keep:  []string{"c0"}, remove: []string{"c0b"}},
		{name: "an unlabelled index is removed", placement: []host.Spec{a},
			found: []existing{ctr(ca, "cx", -1, "h", true, "10.0.0.9")}, create: []int{0}, remove: []string{"cx"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := backend.UpOptions{Name: "calc", Replicas: len(tc.placement), ForceRecreate: tc.force}
			plan, err := planReplicas(o, tc.placement, tc.found, "h")
			var conflict *backend.ConfigConflictError
			if tc.conflict {
				if !errors.As(err, &conflict) || conflict.Env != "calc" {
					t.Fatalf("err = %v, want a configuration conflict", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var keep, remove []string
			for _, in := range plan.keep {
				keep = append(keep, in.ContainerID)
				if in.Address == "" || in.Host != tc.placement[in.Index].Raw {
					t.Errorf("kept %+v: want its address and placed host", in)
				}
			}
			for _, r := range plan.remove {
				remove = append(remove, r.id)
			}
			sort.Strings(keep)
			sort.Strings(remove)
			create := slices.Sorted(slices.Values(plan.create))
			if !slices.Equal(keep, tc.keep) || !slices.Equal(create, tc.create) || !slices.Equal(remove, tc.remove) {
				t.Errorf("keep %v create %v remove %v; want keep %v create %v remove %v", keep, create, remove, tc.keep, tc.create, tc.remove)
			}
		})
	}
}
