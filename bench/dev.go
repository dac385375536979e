package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rfenv/rfenv/pkg/build"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

const devTag = "rfenv-bench-dev:latest"

// devEnvPy is the edited environment: version() tells which save is running.
func devEnvPy(v int) string {
	return fmt.Sprintf("class Actor:\n    def version(self):\n        return %d\n\n    async def echo(self, x=None):\n        return x\n", v)
}

// saveFile writes path as editors do (a temporary file renamed over it).
func saveFile(path, text string) error {
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// awaitVersion calls version() until it returns want, and returns when it did.
func awaitVersion(ctx context.Context, env *rfenv.Env, want int) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := env.Call(cctx, "version", nil)
		ccancel()
		if err == nil {
			var v int
			if json.Unmarshal(res, &v) == nil && v == want {
				return time.Now(), nil
			}
		}
		if ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("version %d never answered: %v", want, err)
		}
		time.Sleep(2 * time.Millisecond) // the poll's resolution, small against the reload
	}
}

// Item 11: `rfenv dev`, from saving env.py to the first call answered by the new code, against what
// the same edit costs without it: rebuild, then up --force-recreate, then the first call.
func itemDev(ctx context.Context, h *harness, sec *section) error {
	sec.title = "`rfenv dev`: save env.py → first call answered by the new code, vs rebuild + up"
	dir := filepath.Join(h.tmp, "devenv")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	envPy := filepath.Join(dir, "env.py")
	if err := saveFile(envPy, devEnvPy(0)); err != nil {
		return err
	}
	h.mu.Lock()
	h.images[devTag] = nil
	h.mu.Unlock()
	bopts := build.Options{Dir: dir, Tag: devTag, BaseImage: h.cfg.baseImage, ProgressMode: "quiet"}
	if _, err := h.client.Build(ctx, nil, bopts); err != nil {
		return err
	}
	dev, err := h.client.StartDev(ctx, devTag, rfenv.DevOptions{Dir: dir, Up: rfenv.UpOptions{Name: h.name("dev"), Replicas: 1}})
	if err != nil {
		return err
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	go func() { watchDone <- dev.Watch(wctx) }()
	defer func() {
		stopWatch()
		<-watchDone
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = dev.Close(cctx)
	}()
	if _, err := awaitVersion(ctx, dev.Env, 0); err != nil {
		return err
	}
	reps := max(3, 4*h.cfg.buildReps)
	var hot []time.Duration
	for r := 1; r <= reps; r++ {
		t0 := time.Now()
		if err := saveFile(envPy, devEnvPy(r)); err != nil {
			return err
		}
		t1, err := awaitVersion(ctx, dev.Env, r)
		if err != nil {
			return err
		}
		hot = append(hot, t1.Sub(t0))
		time.Sleep(200 * time.Millisecond) // let the reload settle before the next save
	}
	stopWatch()
	<-watchDone
	watchDone <- nil // the deferred cleanup reads it once more

	// Without dev: the same edit, rebuilt and brought up again.
	var cold []time.Duration
	var env *rfenv.Env
	for r := 1; r <= max(2, h.cfg.buildReps); r++ {
		v := 1000 + r
		t0 := time.Now()
		if err := saveFile(envPy, devEnvPy(v)); err != nil {
			return err
		}
		if _, err := h.client.Build(ctx, nil, bopts); err != nil {
			return err
		}
		if env != nil {
			env.Release()
		}
		env, err = h.client.Up(ctx, devTag, rfenv.WithName(h.name("devcmp")), rfenv.WithReplicas(1), rfenv.WithForceRecreate())
		if err != nil {
			return err
		}
		t1, err := awaitVersion(ctx, env, v)
		if err != nil {
			return err
		}
		cold = append(cold, t1.Sub(t0))
	}
	if env != nil {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = env.Close(cctx)
		cancel()
	}
	dh, dc := distOf(hot), distOf(cold)
	sec.add(row{name: "rfenv dev: save → first call on the new code", median: ms(dh.median), p99: ms(dh.p99), n: strconv.Itoa(dh.n), target: "≤ 1 s", met: boolp(dh.median <= time.Second)})
	sec.add(row{name: "rebuild + up --force-recreate → first call", median: ms(dc.median), p99: ms(dc.p99), n: strconv.Itoa(dc.n), target: "—"})
	sec.add(row{name: "speed-up (median)", median: fmt.Sprintf("%.1f×", float64(dc.median)/float64(dh.median)), target: "—"})
	sec.note("One replica; env.py saved by write + rename as editors do; the watcher's debounce is %s; version() polled every 2 ms until it answers the new value (failed calls during the reload are retried).", rfenv.DefaultDevDebounce)
	sec.note("dev: min %s, max %s; rebuild + up: min %s, max %s (%s).", ms(dh.min), ms(dh.max), ms(dc.min), ms(dc.max), h.storageNote(ctx))
	return nil
}
