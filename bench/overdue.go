package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// Item 15 (issue 13): the overdue restart. A sync call that never returns (block_sync on a gate that
// is never opened) with a 1 s deadline, on a replica brought up with --overdue-restart 1s: the time
// from deadline + D to the replica serving again, split into the shim's exit, Docker's restart and
// the new server process's start.
func itemOverdue(ctx context.Context, h *harness, sec *section) error {
	const deadline, d = time.Second, time.Second
	sec.title = "The overdue restart: a sync call that never returns, deadline 1 s, `--overdue-restart 1s`"
	runs := min(h.cfg.runs, 5)
	var total, exit, restart, boot, first []time.Duration
	for r := 0; r < runs; r++ {
		// A fresh replica each time: Docker doubles its restart delay for a container that restarts
		// again within 10 s of starting, which would measure Docker's back-off, not rfenv.
		env, err := h.upWith(ctx, fmt.Sprintf("overdue%d", r), "actor", rfenv.UpOptions{Replicas: 1, OverdueRestart: d})
		if err != nil {
			return err
		}
		before, err := env.Pool().Boot(ctx, 0)
		if err != nil {
			return fmt.Errorf("boot id before: %w", err)
		}
		t0 := time.Now()
		cctx, cancel := context.WithDeadline(ctx, t0.Add(deadline))
		_, err = env.Call(cctx, "block_sync", map[string]string{"gate": "never-" + randSuffix()})
		cancel()
		if !errors.Is(err, errs.Deadline) {
			return fmt.Errorf("the stuck call returned %v, want its deadline", err)
		}
		target := t0.Add(deadline + d)
		var tBoot, tCall time.Time
		for limit := time.Now().Add(2 * time.Minute); tBoot.IsZero() || tCall.IsZero(); {
			if time.Now().After(limit) {
				return fmt.Errorf("run %d: the replica did not serve again within 2 minutes (new boot seen: %v)", r, !tBoot.IsZero())
			}
			pctx, pcancel := context.WithTimeout(ctx, 250*time.Millisecond)
			if tBoot.IsZero() {
				if b, err := env.Pool().Boot(pctx, 0); err == nil && b != "" && b != before {
					tBoot = time.Now()
				}
			}
			if !tBoot.IsZero() && tCall.IsZero() {
				if _, err := env.Call(pctx, "replica", nil); err == nil {
					tCall = time.Now()
				}
			}
			pcancel()
			time.Sleep(5 * time.Millisecond)
		}
		total = append(total, tBoot.Sub(target))
		first = append(first, tCall.Sub(target))
		ins, err := h.docker.ContainerInspect(ctx, env.Record().Instances[0].ContainerID, client.ContainerInspectOptions{})
		if err == nil && ins.Container.State != nil {
			fin, e1 := time.Parse(time.RFC3339Nano, ins.Container.State.FinishedAt)
			st, e2 := time.Parse(time.RFC3339Nano, ins.Container.State.StartedAt)
			if e1 == nil && e2 == nil && st.After(fin) {
				exit = append(exit, fin.Sub(target))
				restart = append(restart, st.Sub(fin))
				boot = append(boot, tBoot.Sub(st))
			}
		}
		env.Release()
		h.mu.Lock()
		delete(h.envs, fmt.Sprintf("overdue%d", r))
		h.mu.Unlock()
		if _, err := h.client.Down(ctx, []string{env.Name()}, rfenv.DownOptions{}); err != nil {
			return err
		}
	}
	t, f := distOf(total), distOf(first)
	sec.add(row{name: "deadline + D → the replica's new server process answers /health", median: ms(t.median), p99: ms(t.max) + " (slowest)", n: fmt.Sprintf("%d runs", t.n), target: "—"})
	sec.add(row{name: "deadline + D → first successful call through the same pool", median: ms(f.median), p99: ms(f.max) + " (slowest)", n: fmt.Sprintf("%d runs", f.n), target: "—"})
	if len(exit) > 0 {
		e, rs, b := distOf(exit), distOf(restart), distOf(boot)
		sec.add(row{name: "… of which: deadline + D → the shim exits (Docker's FinishedAt)", median: ms(e.median), p99: ms(e.max) + " (slowest)", n: fmt.Sprintf("%d runs", e.n), target: "—"})
		sec.add(row{name: "… Docker restarts the container (FinishedAt → StartedAt)", median: ms(rs.median), p99: ms(rs.max) + " (slowest)", n: fmt.Sprintf("%d runs", rs.n), target: "—"})
		sec.add(row{name: "… the new shim starts and answers /health (StartedAt → new boot id)", median: ms(b.median), p99: ms(b.max) + " (slowest)", n: fmt.Sprintf("%d runs", b.n), target: "—"})
	}
	sec.note("Fixture testdata/envs/actor, one replica brought up fresh for each run (UpOptions.OverdueRestart = 1 s), then `block_sync(gate)` called with a 1 s deadline on a gate nobody opens. From deadline + D the bench polls every 5 ms: the replica's /health until it reports a new boot id, then a plain call through the same pool. The split uses Docker's own FinishedAt/StartedAt of the container (same clock); the exit can come before the client's deadline + D because the shim counts from the deadline it was sent (X-Rfenv-Timeout-Ms, which the pool sends a twentieth, at most 50 ms, short of its own). Runs: %s.", fmtDurs(total))
	return nil
}

func fmtDurs(ds []time.Duration) string {
	var p []string
	for _, d := range ds {
		p = append(p, ms(d))
	}
	return strings.Join(p, ", ")
}
