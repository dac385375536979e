package cmd

import (
	"testing"

	"github.com/rfenv/rfenv/pkg/pool"
)

// byShimStats names where the hardening tests' executed counts come from, for RELIABILITY.md.
const byShimStats = "the replicas' /stats"

// servedCounts is each replica's own count of the calls its server answered or abandoned (the shim's
// /stats `requests`, as `rfenv stats NAME --json` reports it), with the container process it counts
// for (the container's ID and its start time, from Docker).
type servedCounts map[int]servedCount

type servedCount struct {
	requests int64
	process  string // container ID and State.StartedAt; empty when Docker does not know the container
}

// served reads an environment's per-replica call counts from the replicas themselves.
func served(t testing.TB, c *cli, name string) servedCounts {
	t.Helper()
	containers := map[int]string{}
	if e := readStateFile(t, c.stateDir).Environments[name]; e != nil {
		for _, in := range e.Instances {
			containers[in.Index] = in.ContainerID
		}
	}
	out := servedCounts{}
	for _, in := range decodeJSON[pool.Stats](t, c.ok("stats", name, "--json").stdout).Instances {
		sc := servedCount{requests: in.Requests}
		if id := containers[in.Index]; id != "" {
			// StartedAt changes when Docker restarts the container; a replacement has a new ID.
			if started, err := dockerOutput("inspect", "-f", "{{.State.StartedAt}}", id); err == nil {
				sc.process = id + " " + started
			}
		}
		out[in.Index] = sc
	}
	return out
}

// executedSince is how many calls the replicas counted between before and now. The counter belongs
// to the server process and resets when its container restarts: a replica whose container restarted
// or was replaced since counts from zero; one that cannot be asked now (gone) reports 0 and adds
// nothing, so the calls it ran are uncounted. Docker's start time decides, not the uptime the server
// reports, so a slow round trip on a loaded machine cannot pass for a restart.
func executedSince(t testing.TB, c *cli, name string, before servedCounts) int {
	t.Helper()
	n := 0
	for i, now := range served(t, c, name) {
		prev, ok := before[i]
		if !ok || prev.process == "" || prev.process != now.process || now.requests < prev.requests {
			n += int(now.requests)
			continue
		}
		n += int(now.requests - prev.requests)
	}
	return n
}
