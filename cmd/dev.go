package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/pkg/build"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// DevOptions are `rfenv dev`'s inputs.
type DevOptions struct {
	Dir       string
	Tag       string
	BaseImage string
	Debounce  time.Duration
	Progress  string
	JSON      bool
	Up        UpOptions // name, replicas, -e, --env-file, --secret, ready timeout, limits
}

func newDevCmd(f *Factory) *cobra.Command {
	// The limits up takes keep up's defaults (dev has no flags for them).
	o := &DevOptions{Up: UpOptions{MaxInflight: pool.DefaultMaxInflight, SessionTTL: rfenv.DefaultSessionTTL.String(), OverdueRestart: rfenv.DefaultOverdueRestart.String()}}
	c := &cobra.Command{
		Use:   "dev DIR",
		Short: "Run an environment directory with hot reload",
		Long: `Build DIR once (as rfenv build does), start its replicas on the local Docker daemon with DIR
mounted read-only over the environment's code, and reload the code whenever a file under DIR
changes: each replica re-imports env.py and re-creates the Actor, in well under a second.

A reload that fails (a syntax error, a constructor that raises) makes calls answer with that error,
its file and line, until the next good save: the previous code is not kept running. Each reload is
printed on stderr. Changes to requirements.txt or the Dockerfile need a rebuild: dev says so.
Ctrl-C removes the replicas.

The environment is named after DIR (--name to change it) and works with rfenv call, methods and
stats like any other. The image is tagged NAME:dev unless -t is given. Function environments only
(an Actor or functions in env.py), on the local daemon only.`,
		Example: `  rfenv dev ./environments/affine
  rfenv dev . --name calc --replicas 2 -e API_KEY
  rfenv call calc add --arg a=1 --arg b=2   # from another terminal`,
		GroupID: groupLifecycle,
		Args:    exactArgs(1, "one environment directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Dir = args[0]
			if !cmd.Flags().Changed("base-image") && f.Config.Source(config.KeyBaseImage) == "default" {
				o.BaseImage = ""
			}
			return runDev(cmd.Context(), f, o)
		},
	}
	fl := c.Flags()
	fl.StringVar(&o.Up.Name, "name", "", "environment name (default: from the directory)")
	fl.StringArrayVar(&o.Up.Hosts, "host", nil, "Docker host: only the local daemon (localhost or unix:///path) can mount DIR")
	fl.StringVarP(&o.Tag, "tag", "t", "", "image tag (default: NAME:dev)")
	fl.IntVarP(&o.Up.Replicas, "replicas", "r", 1, "number of replicas")
	fl.StringArrayVarP(&o.Up.Env, "env", "e", nil, "environment variable KEY=VALUE, or KEY to pass it from this shell (repeatable)")
	fl.StringArrayVar(&o.Up.EnvFiles, "env-file", nil, "file of KEY=VALUE lines (repeatable)")
	fl.StringArrayVar(&o.Up.Secrets, "secret", nil, "like -e, but kept out of the container's configuration (repeatable)")
	fl.StringVar(&o.Up.ReadyTimeout, "ready-timeout", f.Config.String(config.KeyReadyTimeout), "how long to wait for replicas to be ready")
	fl.StringVar(&o.Up.Balancer, "lb", f.Config.String(config.KeyBalancer), "balancing strategy: random, round_robin, least_busy")
	fl.StringVar(&o.Up.Memory, "memory", "", "memory limit per replica, e.g. 512m, 2g")
	fl.Float64Var(&o.Up.CPUs, "cpus", 0, "CPU limit per replica, e.g. 1.5")
	fl.StringVar(&o.BaseImage, "base-image", f.Config.String(config.KeyBaseImage), "FROM of the default Dockerfile (when DIR has none)")
	fl.StringVar(&o.Progress, "progress", f.Config.String(config.KeyProgress), "build progress output: auto, plain, quiet, rawjson")
	fl.DurationVar(&o.Debounce, "debounce", rfenv.DefaultDevDebounce, "quiet time after a change before reloading")
	fl.BoolVar(&o.JSON, "json", false, "print one JSON object per event (ready, reload) on stdout")
	return c
}

// devEvent is what --json prints, one per line.
type devEvent struct {
	Event    string         `json:"event"` // "ready" or "reload"
	Name     string         `json:"name"`
	Image    string         `json:"image,omitempty"`
	CodeDir  string         `json:"code_dir,omitempty"`
	Changed  []string       `json:"changed,omitempty"`
	OK       bool           `json:"ok"`
	Ms       float64        `json:"ms"`
	Replicas []devReplicaEv `json:"replicas,omitempty"`
	Rebuild  []string       `json:"rebuild_needed,omitempty"`
}

type devReplicaEv struct {
	Replica int                `json:"replica"`
	Methods []string           `json:"methods,omitempty"`
	Error   *rfenv.ReloadError `json:"error,omitempty"`
	Message string             `json:"message,omitempty"` // a failure that is not the code's
}

func runDev(ctx context.Context, f *Factory, o *DevOptions) error {
	if build.IsGitURL(o.Dir) {
		return errs.New(errs.Usage, "rfenv dev watches a local directory, not a git URL: clone it, then run rfenv dev on the clone")
	}
	if o.Up.Name == "" {
		o.Up.Name = derivedName(o.Dir)
	}
	if o.Tag == "" {
		o.Tag = o.Up.Name + ":dev"
	}
	uo, err := o.Up.libraryOptions(f)
	if err != nil {
		return err
	}
	// Before building anything: a remote daemon cannot mount DIR.
	if _, err := rfenv.DevHost(uo.Hosts, f.Getenv("DOCKER_HOST")); err != nil {
		return err
	}
	client, err := f.Client()
	if err != nil {
		return err
	}
	p := f.Printer()
	mode := o.Progress
	if f.Quiet {
		mode = "quiet"
	}
	res, err := client.Build(ctx, uo.Hosts, build.Options{Dir: o.Dir, Tag: o.Tag, BaseImage: o.BaseImage, Progress: f.IO.ErrOut, ProgressMode: mode})
	if err != nil {
		return err
	}
	p.Success("built %s in %s", res[0].Image, res[0].Duration.Round(time.Millisecond))
	uo.Progress = nil
	start := time.Now()
	dev, err := client.StartDev(ctx, res[0].Image, rfenv.DevOptions{
		Dir: o.Dir, Up: uo, Debounce: o.Debounce,
		OnReload: func(r rfenv.DevReload) { reportReload(f, o, r) },
	})
	if err != nil {
		return err
	}
	// Whatever ends the watch (Ctrl-C included), the replicas go: a context of its own, since ctx
	// is the one that was cancelled.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := dev.Close(cctx); err != nil {
			p.Warn("%v", err)
		} else {
			p.Success("removed %s", dev.Name())
		}
	}()
	rec := dev.Record()
	if o.JSON {
		if err := p.JSON(devEvent{Event: "ready", Name: rec.Name, Image: rec.Image, CodeDir: dev.CodeDir(), OK: true, Ms: ms(time.Since(start))}); err != nil {
			return err
		}
	}
	p.Success("%s is up: %d replica(s), %s mounted at %s; watching for changes (Ctrl-C to stop)", rec.Name, len(rec.Instances), o.Dir, dev.CodeDir())
	if err := dev.Watch(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		p.Info("stopping %s…", rec.Name)
	}
	return nil
}

// reportReload prints one reload: a line on stderr, and a JSON event on stdout with --json.
func reportReload(f *Factory, o *DevOptions, r rfenv.DevReload) {
	p := f.Printer()
	what := strings.Join(r.Changed, ", ")
	if len(r.Changed) > 3 {
		what = fmt.Sprintf("%s and %d more", strings.Join(r.Changed[:3], ", "), len(r.Changed)-3)
	}
	ev := devEvent{Event: "reload", Changed: r.Changed, OK: r.OK(), Ms: ms(r.Took), Rebuild: r.RebuildNeeded}
	if r.OK() {
		p.Success("reloaded %s on %d replica(s) in %s: %s", what, len(r.Replicas), r.Took.Round(time.Millisecond), strings.Join(r.Replicas[0].Methods, ", "))
	}
	for _, rr := range r.Replicas {
		rev := devReplicaEv{Replica: rr.Replica, Methods: rr.Methods}
		var le *rfenv.ReloadError
		switch {
		case rr.Err == nil:
		case errors.As(rr.Err, &le):
			rev.Error = le
			p.Warn("reload of %s failed on replica %d: %v\n  calls answer with this error until the next good save", what, rr.Replica, le)
			if f.Verbose && le.Traceback != "" {
				fmt.Fprintln(f.IO.ErrOut, le.Traceback)
			}
		default:
			rev.Message = rr.Err.Error()
			p.Warn("reload of %s failed on replica %d: %v", what, rr.Replica, rr.Err)
		}
		ev.Replicas = append(ev.Replicas, rev)
	}
	for _, file := range r.RebuildNeeded {
		p.Warn("%s changed: a reload does not apply it; stop rfenv dev and start it again to rebuild", file)
	}
	if o.JSON {
		_ = p.JSON(ev)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
