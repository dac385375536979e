package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

type episodeRef struct {
	EpisodeID string `json:"episode_id"`
	Replica   string `json:"replica"`
}

// Item 16 (issue 14): what a session adds to a call, in process and as a whole `rfenv call`, and
// 2,048 live sessions on this machine with their steps' latency.
func itemSessions(ctx context.Context, h *harness, sec *section) error {
	sec.title = "Sessions: the cost of pinning a call, and 2,048 live sessions (testdata/envs/episodic)"
	if err := sessionCost(ctx, h, sec); err != nil {
		return err
	}
	return manySessions(ctx, h, sec)
}

func sessionCost(ctx context.Context, h *harness, sec *section) error {
	env, err := h.upWith(ctx, "sess1", "episodic", rfenv.UpOptions{Replicas: 1})
	if err != nil {
		return err
	}
	s, err := env.OpenSession(ctx)
	if err != nil {
		return err
	}
	var ep episodeRef
	if err := s.CallInto(ctx, "reset", nil, &ep); err != nil {
		return err
	}
	kw := map[string]any{"episode_id": ep.EpisodeID, "action": 1}
	plain := func(ctx context.Context) error { _, err := env.Call(ctx, "step", kw); return err }
	pinned := func(ctx context.Context) error { _, err := s.Call(ctx, "step", kw); return err }
	dp, ds, err := interleave(ctx, h.cfg.rounds, h.cfg.perRound, plain, pinned)
	if err != nil {
		return err
	}
	p, q := distOf(dp), distOf(ds)
	sec.add(row{name: "in process: plain env.Call(\"step\")", median: us(p.median), p99: us(p.p99), n: strconv.Itoa(p.n), target: "—"})
	sec.add(row{name: "in process: session.Call(\"step\") (pinned, boot id checked, record touched)", median: us(q.median), p99: us(q.p99), n: strconv.Itoa(q.n), target: "—"})
	sec.add(row{name: "in process: added by the session (median)", median: us(q.median - p.median), p99: fmt.Sprintf("%.2f× at the median", float64(q.median)/float64(p.median)), n: "", target: "—"})

	bin, err := h.binary(ctx)
	if err != nil {
		return err
	}
	environ := append(os.Environ(), "RFENV_STATE_DIR="+h.stateDir, "NO_COLOR=1")
	argv := []string{"call", env.Name(), "step", "--arg-str", "episode_id=" + ep.EpisodeID, "--arg", "action=1"}
	withSess := append(slices.Clone(argv), "--session", s.Key())
	proc := func(args []string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = environ
		var errb bytes.Buffer
		cmd.Stderr = &errb
		t0 := time.Now()
		err := cmd.Run()
		if err != nil {
			return 0, fmt.Errorf("rfenv %v: %v: %s", args, err, errb.Bytes())
		}
		return time.Since(t0), nil
	}
	var tp, ts []time.Duration
	for i := 0; i < 3; i++ { // page cache
		proc(argv)
		proc(withSess)
	}
	for i := 0; i < h.cfg.procRuns; i++ {
		order := [][]string{argv, withSess}
		if i%2 == 1 {
			order = [][]string{withSess, argv}
		}
		for _, a := range order {
			d, err := proc(a)
			if err != nil {
				return err
			}
			if len(a) == len(argv) {
				tp = append(tp, d)
			} else {
				ts = append(ts, d)
			}
		}
	}
	pp, ps := distOf(tp), distOf(ts)
	sec.add(row{name: "`rfenv call NAME step ...` (whole process)", median: ms(pp.median), p99: ms(pp.p99), n: strconv.Itoa(pp.n), target: "—"})
	sec.add(row{name: "`rfenv call NAME step ... --session KEY` (whole process)", median: ms(ps.median), p99: ms(ps.p99), n: strconv.Itoa(ps.n), target: "—"})
	sec.add(row{name: "whole process: added by --session (median)", median: us(ps.median - pp.median), p99: fmt.Sprintf("%.2f× at the median", float64(ps.median)/float64(pp.median)), target: "—"})
	sec.note("Cost of a session: one replica, one episode; %d rounds of %d sequential `step` calls per side, alternating which goes first (the plain call reaches the same replica, there being one). `rfenv call` processes: %d of each, alternating.", h.cfg.rounds, h.cfg.perRound, h.cfg.procRuns)
	return s.Close(ctx)
}

// manySessions: 2,048 sessions open at once on 2 replicas (one per core), each a reset then steps.
func manySessions(ctx context.Context, h *harness, sec *section) error {
	n, steps := 2048, 10
	if h.cfg.quick {
		n, steps = 512, 5
	}
	env, err := h.upWith(ctx, "sess2", "episodic", rfenv.UpOptions{Replicas: 2})
	if err != nil {
		return err
	}
	// One open at a time on an empty table, for comparison with one open beside n live sessions.
	seqOpens := func(k int) ([]time.Duration, error) {
		var ds []time.Duration
		for i := 0; i < k; i++ {
			c0 := time.Now()
			s, err := env.OpenSession(ctx)
			if err != nil {
				return nil, err
			}
			ds = append(ds, time.Since(c0))
			defer s.Close(ctx)
		}
		return ds, nil
	}
	emptyOpens, err := seqOpens(20)
	if err != nil {
		return err
	}
	sessions := make([]*rfenv.Session, n)
	opens := make([]time.Duration, 0, n)
	var mu sync.Mutex
	var first, firstOpen error
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	// Open all at once, as n agents starting together would: placement takes the table's lock and
	// counts every open session. Those that fail are opened again below, 8 at a time, so that the
	// step phase still has n live sessions.
	var wg sync.WaitGroup
	var openFailed int
	t0 := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c0 := time.Now()
			s, err := env.OpenSession(ctx)
			d := time.Since(c0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				openFailed++
				if firstOpen == nil {
					firstOpen = fmt.Errorf("after %s: %w", ms(d), err)
				}
				return
			}
			opens = append(opens, d)
			sessions[i] = s
		}()
	}
	wg.Wait()
	openWall := time.Since(t0)
	sem := make(chan struct{}, 8)
	for i := range sessions {
		if sessions[i] != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := env.OpenSession(ctx)
			if err != nil {
				fail(fmt.Errorf("open (again, 8 at a time): %w", err))
				return
			}
			sessions[i] = s
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	live, err := env.Sessions(ctx)
	if err != nil {
		return err
	}
	perReplica := map[int]int{}
	for _, s := range live {
		perReplica[s.Replica]++
	}
	// Every session resets and steps at once, all live together.
	stepLat := make([][]time.Duration, n)
	resetLat := make([]time.Duration, n)
	var failed int
	t1 := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := sessions[i]
			var ep episodeRef
			c0 := time.Now()
			if err := s.CallInto(ctx, "reset", nil, &ep); err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				fail(fmt.Errorf("reset: %w", err))
				return
			}
			resetLat[i] = time.Since(c0)
			for k := 1; k <= steps; k++ {
				var st stepResultB
				c0 := time.Now()
				err := s.CallInto(ctx, "step", map[string]any{"episode_id": ep.EpisodeID, "action": k}, &st)
				stepLat[i] = append(stepLat[i], time.Since(c0))
				if err == nil && (st.Steps != k || st.Replica != ep.Replica) {
					err = fmt.Errorf("step %d answered %+v, the episode is on replica %s", k, st, ep.Replica)
				}
				if err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
					fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	stepWall := time.Since(t1)
	var all []time.Duration
	for _, l := range stepLat {
		all = append(all, l...)
	}
	sd, od, rd := distOf(all), distOf(opens), distOf(resetLat)
	sec.add(row{name: fmt.Sprintf("%s live sessions: steps that failed or missed their episode", commas(n)), median: fmt.Sprintf("%d of %s sessions", failed, commas(n)), n: fmt.Sprintf("%s steps", commas(n*steps)), target: "0", met: boolp(failed == 0)})
	sec.add(row{name: fmt.Sprintf("%s live sessions: step latency, all stepping at once", commas(n)), median: us(sd.median), p99: us(sd.p99), n: strconv.Itoa(sd.n), target: "—"})
	sec.add(row{name: fmt.Sprintf("%s live sessions: step throughput", commas(n)), median: rate(float64(len(all)) / stepWall.Seconds()), p99: "", n: "1 run", target: "—"})
	sec.add(row{name: fmt.Sprintf("%s live sessions: reset latency (first call of each)", commas(n)), median: us(rd.median), p99: us(rd.p99), n: strconv.Itoa(rd.n), target: "—"})
	sec.add(row{name: fmt.Sprintf("opening %s sessions at once: opens that failed", commas(n)), median: fmt.Sprintf("%d of %s", openFailed, commas(n)), n: "1 run", target: "0", met: boolp(openFailed == 0)})
	sec.add(row{name: fmt.Sprintf("opening %s sessions at once: latency of one successful open", commas(n)), median: ms(od.median), p99: ms(od.p99), n: strconv.Itoa(od.n), target: "—"})
	sec.add(row{name: fmt.Sprintf("opening %s sessions at once: until every open returned", commas(n)), median: ms(openWall), p99: "", n: "1 run", target: "—"})
	fullOpens, err := seqOpens(20)
	if err != nil {
		return err
	}
	e0, e1 := distOf(emptyOpens), distOf(fullOpens)
	sec.add(row{name: "one open at a time, no other session open", median: us(e0.median), p99: us(e0.p99), n: strconv.Itoa(e0.n), target: "—"})
	sec.add(row{name: fmt.Sprintf("one open at a time, %s sessions open", commas(n)), median: us(e1.median), p99: us(e1.p99), n: strconv.Itoa(e1.n), target: "—"})
	if firstOpen != nil {
		sec.note("Opening %s at once: %d opens failed; the first: %v. Placement holds the environment's session lock (a polled flock, retried with back-off, so waiters are not served in order) while it reads every open session's file and probes the chosen replica's /health; an open therefore costs time in proportion to the sessions already open (the two one-at-a-time rows), %s opens at once cost about n²/2 file reads under one lock, and the waiters past the lock's 30 s timeout fail.", commas(n), openFailed, firstOpen, commas(n))
	}
	if first != nil {
		sec.note("First failure: %v", first)
	}
	sec.note("%s sessions on 2 replicas (one per core; OpenEnv publishes 256 per core): env.Sessions (what `rfenv session ls` lists) counted %d live, placed %v per replica. Then every session ran `reset` and %d `step`s at once (%s goroutines, one per session; the default budget of %d calls per replica bounds the calls on the wire), step wall %s.", commas(n), len(live), perReplica, steps, commas(n), pool.DefaultMaxInflight, ms(stepWall))
	for _, s := range sessions {
		if s != nil {
			s.Close(ctx)
		}
	}
	return nil
}

type stepResultB struct {
	Steps   int    `json:"steps"`
	Replica string `json:"replica"`
}
