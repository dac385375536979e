package cmd

import (
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/pool"
)

// byShimStats names where the hardening tests' executed counts come from, for RELIABILITY.md.
const byShimStats = "the replicas' /stats"

// servedCounts is each replica's own count of the calls its server answered or abandoned (the shim's
// /stats `requests`), and when that server process started, as `rfenv stats NAME --json` reports.
type servedCounts map[int]servedCount

type servedCount struct {
	requests int64
	started  time.Time // now minus the server's uptime; zero when the replica could not be asked
}

// served reads an environment's per-replica call counts from the replicas themselves.
func served(t testing.TB, c *cli, name string) servedCounts {
	t.Helper()
	out := servedCounts{}
	for _, in := range decodeJSON[pool.Stats](t, c.ok("stats", name, "--json").stdout).Instances {
		sc := servedCount{requests: in.Requests}
		if in.UptimeS > 0 {
			sc.started = time.Now().Add(-time.Duration(in.UptimeS * float64(time.Second)))
		}
		out[in.Index] = sc
	}
	return out
}

// restartSlack is how far apart two readings of one server's start time may be (the uptime is read
// over a network round trip); a restarted server started at least a boot later.
const restartSlack = 500 * time.Millisecond

// executedSince is how many calls the replicas counted between before and now. The counter belongs
// to the server process: one that started since (a restarted container, or a replacement) counts
// from zero; one that cannot be asked now (gone) reports 0 and adds nothing, so the calls it ran are
// uncounted.
func executedSince(t testing.TB, c *cli, name string, before servedCounts) int {
	t.Helper()
	n := 0
	for i, now := range served(t, c, name) {
		prev, ok := before[i]
		restarted := !ok || prev.started.IsZero() || now.requests < prev.requests || now.started.Sub(prev.started) > restartSlack
		if restarted {
			n += int(now.requests)
			continue
		}
		n += int(now.requests - prev.requests)
	}
	return n
}
