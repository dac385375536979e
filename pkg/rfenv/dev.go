package rfenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
)

// DefaultCodeDir is where the shim loads env.py from when the image sets no RFENV_APP_DIR (the
// default Dockerfile copies the environment directory there).
const DefaultCodeDir = "/app"

// LabelDev marks the containers of a dev environment; its value is the watched directory.
const LabelDev = "rfenv.dev"

// DevOptions describe a dev environment: replicas of an image with the environment directory
// mounted read-only over their code, reloaded on every change.
type DevOptions struct {
	Dir      string        // the environment directory: mounted and watched
	Up       UpOptions     // as for Up; Hosts must name the local daemon only
	Debounce time.Duration // quiet time after a change before reloading (default DefaultDevDebounce)
	// OnReload receives each reload's outcome (from the watching goroutine).
	OnReload func(DevReload)
}

// DevReload is one reload of every replica after a change.
type DevReload struct {
	Changed  []string        // the changed paths, relative to Dir
	Replicas []ReplicaReload // one per replica, in replica order
	Took     time.Duration   // from the first replica's request to the last answer
	// RebuildNeeded lists changed files that a reload cannot apply (requirements.txt, the
	// Dockerfile): the image must be rebuilt for them.
	RebuildNeeded []string
}

// OK reports whether every replica loaded the new code.
func (r DevReload) OK() bool {
	for _, rr := range r.Replicas {
		if rr.Err != nil {
			return false
		}
	}
	return len(r.Replicas) > 0
}

// DevEnv is a running dev environment.
type DevEnv struct {
	*Env
	c       *Client
	dir     string
	codeDir string
	o       DevOptions
	reload  *reloadClient
	mu      sync.Mutex // one reload at a time
}

// CodeDir is the directory inside the containers that Dir is mounted over.
func (d *DevEnv) CodeDir() string { return d.codeDir }

// StartDev brings up image's replicas on the local daemon with o.Dir bind-mounted read-only over
// the environment's code directory (the image's RFENV_APP_DIR, else /app). Call Watch to reload
// them on changes, and Close to remove them.
func (c *Client) StartDev(ctx context.Context, image string, o DevOptions) (*DevEnv, error) {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, errs.New(errs.Usage, "cannot resolve %s: %v", o.Dir, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "env.py")); err != nil || !fi.Mode().IsRegular() {
		return nil, errs.New(errs.Usage, "no env.py in %s: rfenv dev watches an environment directory", dir)
	}
	spec, err := DevHost(o.Up.Hosts, os.Getenv("DOCKER_HOST"))
	if err != nil {
		return nil, err
	}
	conn, err := c.conn(ctx, spec)
	if err != nil {
		return nil, err
	}
	res, err := conn.Docker.ImageInspect(ctx, image)
	if err != nil {
		return nil, errs.New(errs.NotFound, "image %s not found on the local daemon: build it first (rfenv build %s -t %s): %v", image, o.Dir, image, err)
	}
	codeDir, kind := DefaultCodeDir, pool.KindFunction
	if res.Config != nil {
		if t := res.Config.Labels[containers.ImageLabelType]; t != "" {
			kind = t
		}
		for _, e := range res.Config.Env {
			if v, ok := strings.CutPrefix(e, "RFENV_APP_DIR="); ok && v != "" {
				codeDir = path.Clean(v)
			}
		}
	}
	if o.Up.Type != "" {
		kind = o.Up.Type
	}
	if kind != pool.KindFunction {
		return nil, errs.New(errs.Usage, "rfenv dev reloads function environments (an Actor or functions in env.py), and %s is an %s environment: rebuild and restart it with `rfenv up --build %s --force-recreate` after a change", image, kind, o.Dir)
	}
	if err := c.checkDevName(ctx, conn, NameOrDefault(o.Up.Name, image)); err != nil {
		return nil, err
	}
	up := o.Up
	up.Hosts = []string{spec.Raw}
	up.Volumes = append(append([]string{}, up.Volumes...), dir+":"+codeDir+":ro")
	up.Labels = map[string]string{}
	for k, v := range o.Up.Labels {
		up.Labels[k] = v
	}
	up.Labels[LabelDev] = dir
	// The mount is part of the replica's configuration: replicas of an earlier `up` or `dev` of
	// another directory must not be kept.
	up.ForceRecreate = true
	env, err := c.Up(ctx, image, WithUpOptions(up))
	if err != nil {
		return nil, err
	}
	if o.Debounce <= 0 {
		o.Debounce = DefaultDevDebounce
	}
	return &DevEnv{Env: env, c: c, dir: dir, codeDir: codeDir, o: o, reload: newReloadClient(env.Record().Token)}, nil
}

// NameOrDefault is name, or the environment name Up derives from image when name is empty.
func NameOrDefault(name, image string) string {
	if name != "" {
		return name
	}
	return NameFromImage(image)
}

// checkDevName refuses to take over an environment that `rfenv up` started: dev replaces its
// replicas and removes them at the end, which would silently tear down a running deployment.
// A dev environment left by an earlier dev session (killed before it could clean up) is reused.
func (c *Client) checkDevName(ctx context.Context, conn *dockerhost.Conn, name string) error {
	rec, err := c.store.Get(ctx, name)
	if err != nil {
		return nil // no such environment
	}
	items, err := containers.List(ctx, conn, containers.Filter{StateID: c.store.ID(), Env: name})
	if err != nil {
		return err
	}
	notDev := false
	for _, h := range rec.Hosts {
		if sp, err := host.Parse(h); err == nil && sp.Kind != host.Local && sp.Kind != host.Unix {
			notDev = true
		}
	}
	for _, it := range items {
		if _, ok := it.Labels[LabelDev]; !ok {
			notDev = true
		}
	}
	if notDev || rec.Attached {
		return errs.New(errs.Conflict, "environment %s is already up and is not a dev environment: rfenv dev would replace it and remove it at the end; pass --name %s-dev, or `rfenv down %s` first", name, name, name)
	}
	return nil
}

// DevHost checks that hosts (empty: the local daemon) name the local daemon only, given the
// DOCKER_HOST in effect: a bind mount of a local directory means nothing to another machine's
// daemon. It returns the host's spec.
func DevHost(hosts []string, dockerHost string) (host.Spec, error) {
	specs, err := host.ParseAll(hosts)
	if err != nil {
		return host.Spec{}, err
	}
	if len(specs) != 1 {
		return host.Spec{}, errs.New(errs.Usage, "rfenv dev runs on the local Docker daemon only, and %d hosts were given", len(specs))
	}
	sp := specs[0]
	if sp.Kind != host.Local && sp.Kind != host.Unix {
		return host.Spec{}, errs.New(errs.Usage, "rfenv dev runs on the local Docker daemon only (it mounts %s into the containers), not on %s: develop locally, then `rfenv up --build DIR --host %s`", "the directory", sp.Raw, sp.Raw)
	}
	if sp.Kind == host.Local && dockerHost != "" && !strings.HasPrefix(dockerHost, "unix://") {
		return host.Spec{}, errs.New(errs.Usage, "rfenv dev runs on the local Docker daemon only, and DOCKER_HOST is %s: unset it, or point it at a unix:// socket", dockerHost)
	}
	return sp, nil
}

// Watch reloads the replicas whenever a file under the directory changes, until ctx is done (then
// it returns nil). Each reload is reported to OnReload.
func (d *DevEnv) Watch(ctx context.Context) error {
	return watchTree(ctx, d.dir, d.o.Debounce, func(changed []string) {
		r := d.Reload(ctx)
		r.Changed = changed
		for _, p := range changed {
			if b := path.Base(p); b == "requirements.txt" || b == "Dockerfile" || b == ".dockerignore" {
				r.RebuildNeeded = append(r.RebuildNeeded, p)
			}
		}
		// A reload cut short by the end of the watch is no news; one that finished is.
		if d.o.OnReload != nil && (ctx.Err() == nil || r.OK()) {
			d.o.OnReload(r)
		}
	})
}

// Reload asks every replica to re-import env.py now, all at once.
func (d *DevEnv) Reload(ctx context.Context) DevReload {
	d.mu.Lock()
	defer d.mu.Unlock()
	t0 := time.Now()
	rec := d.Record()
	ins := rec.Instances
	out := DevReload{Replicas: make([]ReplicaReload, len(ins))}
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Go(func() {
			rr := d.reload.reload(ctx, &rec, in)
			var le *ReloadError
			if errors.As(rr.Err, &le) {
				le.localPaths(d.codeDir, d.dir)
			}
			out.Replicas[i] = rr
		})
	}
	wg.Wait()
	out.Took = time.Since(t0)
	return out
}

// Close removes the dev environment's replicas and forgets it.
func (d *DevEnv) Close(ctx context.Context) error {
	if err := d.Env.Close(ctx); err != nil {
		return fmt.Errorf("removing the dev environment %s: %w", d.Name(), err)
	}
	return nil
}
