package docker

import (
	"github.com/moby/moby/api/types/container"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
)

// existing is a container of the environment found on a host.
type existing struct {
	conn    *dockerhost.Conn
	summary container.Summary
	index   int
}

func (e existing) running() bool { return e.summary.State == container.StateRunning }

type toRemove struct {
	conn *dockerhost.Conn
	id   string
}

type replicaPlan struct {
	keep   []state.Instance
	create []int // replica indices to start
	remove []toRemove
}

// planReplicas decides, for each replica index, whether to keep the container there, replace it or
// start one, and which containers to remove. A running replica whose configuration differs is an
// error unless ForceRecreate is set: replacing it silently could drop work in progress.
func planReplicas(o backend.UpOptions, placement []host.Spec, found []existing, hash string) (replicaPlan, error) {
	var plan replicaPlan
	byIndex := map[int][]existing{}
	for _, e := range dedupeByContainer(found, placement) {
		byIndex[e.index] = append(byIndex[e.index], e)
	}
	var mismatched []string
	for i := range placement {
		for _, e := range byIndex[i] {
			if e.running() && e.conn.Spec.Raw == placement[i].Raw && e.summary.Labels[containers.LabelConfigHash] != hash {
				mismatched = append(mismatched, containers.Name(o.Name, i))
			}
		}
	}
	if len(mismatched) > 0 && !o.ForceRecreate {
		return plan, &backend.ConfigConflictError{Env: o.Name, Replicas: mismatched}
	}
	for i := range placement {
		kept := false
		for _, e := range byIndex[i] {
			if !kept && !o.ForceRecreate && e.running() && e.conn.Spec.Raw == placement[i].Raw && e.summary.Labels[containers.LabelConfigHash] == hash {
				addr, port := summaryAddress(e.summary, o.Network), 0
				// auto starts from the bridge address too, and settles each replica's once it
				// is ready (settleAuto).
				if o.Transport == protocol.TransportPublished {
					addr, port = summaryPublished(e.summary)
				}
				if addr != "" {
					kept = true
					plan.keep = append(plan.keep, state.Instance{
						Index: i, Host: e.conn.Spec.Raw, ContainerID: e.summary.ID,
						ContainerName: containers.Name(o.Name, i), Address: addr, Port: port,
					})
					continue
				}
			}
			plan.remove = append(plan.remove, toRemove{conn: e.conn, id: e.summary.ID})
		}
		if !kept {
			plan.create = append(plan.create, i)
		}
	}
	for idx, es := range byIndex {
		if idx < 0 || idx >= len(placement) {
			for _, e := range es {
				plan.remove = append(plan.remove, toRemove{conn: e.conn, id: e.summary.ID})
			}
		}
	}
	return plan, nil
}

// dedupeByContainer keeps one sighting of each container. Two host specs can name one daemon
// (localhost and ssh://this-machine); a container seen through both belongs to the host its replica
// was placed on, and must not be taken for a stray on the other.
func dedupeByContainer(found []existing, placement []host.Spec) []existing {
	best := map[string]int{}
	var out []existing
	for _, e := range found {
		i, seen := best[e.summary.ID]
		if !seen {
			best[e.summary.ID] = len(out)
			out = append(out, e)
			continue
		}
		if e.index >= 0 && e.index < len(placement) && e.conn.Spec.Raw == placement[e.index].Raw {
			out[i] = e
		}
	}
	return out
}

func summaryAddress(s container.Summary, networkName string) string {
	if s.NetworkSettings == nil {
		return ""
	}
	if networkName == "" {
		networkName = protocol.DefaultNetwork
	}
	if ep, ok := s.NetworkSettings.Networks[networkName]; ok && ep != nil && ep.IPAddress.IsValid() {
		return ep.IPAddress.String()
	}
	return ""
}

// summaryPublished is where a container's port is published on the daemon host's loopback.
func summaryPublished(s container.Summary) (string, int) {
	for _, p := range s.Ports {
		if p.PublicPort != 0 && p.IP.IsLoopback() {
			return p.IP.String(), int(p.PublicPort)
		}
	}
	return "", 0
}
