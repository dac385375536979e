package cmd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// UpOptions are `rfenv up`'s inputs.
type UpOptions struct {
	Image         string
	Name          string
	Replicas      int
	Env           []string
	EnvFiles      []string
	Secrets       []string
	Type          string
	ForceRecreate bool
	Balancer      string
	ReadyTimeout  string
	Memory        string
	CPUs          float64
	GPUs          string
	Volumes       []string
	Network       string
	Labels        []string
	Hosts         []string
	NoTransfer    bool
	Pull          bool
	PullPolicy    string
	Transport     string
	// The pool's limits (see `rfenv up --help`).
	MaxInflight    int
	MaxSessions    int
	SessionTTL     string
	OverdueRestart string
	JSON           bool
	// Build, when set, is a directory or git URL built first (tagged Tag, or a tag derived from it).
	Build     string
	Tag       string
	BaseImage string
}

func newUpCmd(f *Factory) *cobra.Command {
	o := &UpOptions{}
	c := &cobra.Command{
		Use:   "up IMAGE | up --build DIR [-t TAG]",
		Short: "Start replicas of an environment image",
		Long: `Start replicas of IMAGE and wait until each answers /health, then record the environment
in the state file so that call, methods, stats and down find it.

Replicas run with no published ports: rfenv reaches each container on its internal address (through
the SSH connection for remote hosts). On an existing environment, up keeps replicas that run and
match, replaces dead ones, and scales to --replicas. Values given with -e and --secret are secrets:
they reach the containers only, never the state file, logs or output. --secret values are also kept
out of the container's configuration (docker inspect shows -e values, not --secret values).

With --build DIR (a directory or a git URL, as rfenv build takes), up first builds DIR on each host,
tagged -t TAG or NAME:latest after DIR's last path element, then starts that image.`,
		Example: `  rfenv up affine:latest --replicas 3 -e CHUTES_API_KEY
  rfenv up affine:latest --name affine-eval --host localhost --host ssh://gpu1 --replicas 4
  rfenv up affine:latest --secret CHUTES_API_KEY --json
  rfenv up --build ./environments/affine --replicas 2`,
		GroupID: groupLifecycle,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.Build != "" {
				return exactArgs(0, "no image with --build (the image is built from DIR)")(cmd, args)
			}
			return exactArgs(1, "one image")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Image = args[0]
			}
			if !cmd.Flags().Changed("host") {
				o.Hosts = f.Config.Strings(config.KeyHosts)
			}
			if o.Build != "" && !cmd.Flags().Changed("base-image") && f.Config.Source(config.KeyBaseImage) == "default" {
				o.BaseImage = ""
			}
			return runUp(cmd.Context(), f, o)
		},
	}
	fl := c.Flags()
	fl.StringVar(&o.Name, "name", "", "environment name (default: from the image, affine:latest → affine)")
	fl.IntVarP(&o.Replicas, "replicas", "r", 1, "number of replicas")
	fl.StringArrayVarP(&o.Env, "env", "e", nil, "environment variable KEY=VALUE, or KEY to pass it from this shell (repeatable)")
	fl.StringArrayVar(&o.EnvFiles, "env-file", nil, "file of KEY=VALUE lines (repeatable)")
	fl.StringArrayVar(&o.Secrets, "secret", nil, "like -e, but kept out of the container's configuration (repeatable)")
	fl.StringVar(&o.Type, "type", "", "environment type: function or http (default: from the image)")
	fl.BoolVar(&o.ForceRecreate, "force-recreate", false, "replace existing replicas even if they match")
	fl.StringVar(&o.Balancer, "lb", f.Config.String(config.KeyBalancer), "balancing strategy: random, round_robin, least_busy")
	fl.StringVar(&o.ReadyTimeout, "ready-timeout", f.Config.String(config.KeyReadyTimeout), "how long to wait for replicas to be ready")
	fl.StringVar(&o.Memory, "memory", "", "memory limit per replica, e.g. 512m, 2g")
	fl.Float64Var(&o.CPUs, "cpus", 0, "CPU limit per replica, e.g. 1.5")
	fl.StringVar(&o.GPUs, "gpus", "", "GPUs per replica: all or a count")
	fl.StringArrayVarP(&o.Volumes, "volume", "v", nil, "bind mount SRC:DST[:ro] (repeatable)")
	fl.StringVar(&o.Network, "network", "", "user-defined Docker network to join (calls use the address on it)")
	fl.StringArrayVar(&o.Labels, "label", nil, "extra container label KEY=VALUE (repeatable)")
	fl.StringArrayVar(&o.Hosts, "host", nil, "Docker host: localhost, unix:///path, ssh://[user@]host[:port] (repeatable; replicas spread over them in order), or one Kubernetes cluster: k8s://[context][/namespace]")
	fl.StringVar(&o.PullPolicy, "pull-policy", "", "image pull policy on k8s:// hosts: IfNotPresent (default), Always, Never")
	fl.StringVar(&o.Transport, "transport", f.Config.String(config.KeyTransport), "how calls reach replicas on Docker hosts: auto (default), direct (bridge address), published (a port on the daemon host's 127.0.0.1 only)")
	fl.BoolVar(&o.NoTransfer, "no-transfer", false, "do not send the image to remote hosts that lack it")
	fl.BoolVar(&o.Pull, "pull", false, "pull the image on each host first (a local copy is used when no registry answers)")
	fl.IntVar(&o.MaxInflight, "max-inflight", pool.DefaultMaxInflight, "calls one process keeps in flight on each replica; more wait in a FIFO queue")
	fl.IntVar(&o.MaxSessions, "max-sessions", 0, "live sessions per replica (0: no limit); opening one more fails at once")
	fl.StringVar(&o.SessionTTL, "session-ttl", rfenv.DefaultSessionTTL.String(), "a session idle this long expires")
	fl.StringVar(&o.OverdueRestart, "overdue-restart", rfenv.DefaultOverdueRestart.String(), "restart a replica whose call has not returned this long after its deadline (off: never)")
	fl.BoolVar(&o.JSON, "json", false, "print the environment as JSON")
	fl.StringVar(&o.Build, "build", "", "build this directory or git URL (URL#REF:SUBDIR) first, then start it")
	fl.StringVarP(&o.Tag, "tag", "t", "", "with --build: the image tag (default: NAME:latest from the directory)")
	fl.StringVar(&o.BaseImage, "base-image", f.Config.String(config.KeyBaseImage), "with --build: FROM of the default Dockerfile (when DIR has none)")
	return c
}

func runUp(ctx context.Context, f *Factory, o *UpOptions) error {
	uo, err := o.libraryOptions(f)
	if err != nil {
		return err
	}
	client, err := f.Client()
	if err != nil {
		return err
	}
	if o.Build != "" {
		if o.Image, err = o.buildFirst(ctx, f, client); err != nil {
			return err
		}
	}
	p := f.Printer()
	if !f.Quiet {
		// Sending an image to a remote host can take minutes: say so on stderr, terminal or not.
		uo.Progress = f.IO.ErrOut
	}
	if f.IO.IsStderrTTY() && !f.Quiet {
		p.Info("starting %d replica(s) of %s…", uo.Replicas, o.Image)
	}
	start := time.Now()
	env, err := client.Up(ctx, o.Image, rfenv.WithUpOptions(uo))
	if err != nil {
		return err
	}
	defer env.Release()
	rec := env.Record()
	if o.JSON {
		return p.JSON(viewOf(&rec))
	}
	p.Success("%s is up: %d replica(s) of %s ready in %s", rec.Name, len(rec.Instances), rec.Image, time.Since(start).Round(time.Millisecond))
	switch rec.Transport {
	case protocol.TransportDirect:
		p.Info("transport direct: calls reach the replicas at their bridge addresses")
	case protocol.TransportPublished:
		why := ""
		if uo.Transport == "" || uo.Transport == protocol.TransportAuto {
			why = " (auto: their bridge addresses do not answer from here)"
		}
		p.Info("transport published%s: calls reach the replicas at ports published on their hosts' 127.0.0.1 only", why)
	case protocol.TransportMixed:
		p.Info("transport mixed (auto): replicas whose bridge addresses do not answer from here are reached at ports published on their hosts' 127.0.0.1 only; `rfenv ls --json` shows each address")
	}
	if f.IO.IsStdoutTTY() {
		rows := [][]string{}
		for _, in := range rec.Instances {
			rows = append(rows, []string{strconv.Itoa(in.Index), in.ContainerName, in.Host, in.Address})
		}
		return p.Table([]string{"replica", "container", "host", "address"}, rows)
	}
	_, err = fmt.Fprintln(f.IO.Out, rec.Name)
	return err
}

func (o *UpOptions) libraryOptions(f *Factory) (rfenv.UpOptions, error) {
	uo := rfenv.UpOptions{
		Name: o.Name, Replicas: o.Replicas, Type: o.Type, Balancer: o.Balancer, ForceRecreate: o.ForceRecreate,
		GPUs: o.GPUs, Volumes: o.Volumes, Network: o.Network, Hosts: o.Hosts, NoTransfer: o.NoTransfer, Pull: o.Pull,
		PullPolicy: o.PullPolicy,
		Transport:  o.Transport,
	}
	if o.Replicas < 1 {
		return uo, errs.New(errs.Usage, "--replicas %d: need at least 1 (use `rfenv down` to remove an environment)", o.Replicas)
	}
	d, err := config.ParseDuration(o.ReadyTimeout)
	if err != nil {
		return uo, errs.New(errs.Usage, "--ready-timeout: %v", err)
	}
	uo.ReadyTimeout = d
	if err := o.limits(&uo); err != nil {
		return uo, err
	}
	if o.Memory != "" {
		n, err := units.RAMInBytes(o.Memory)
		if err != nil || n <= 0 {
			return uo, errs.New(errs.Usage, "--memory %q: expected a size such as 512m or 2g", o.Memory)
		}
		uo.Memory = n
	}
	if o.CPUs < 0 {
		return uo, errs.New(errs.Usage, "--cpus %v: must be positive", o.CPUs)
	}
	uo.NanoCPUs = int64(o.CPUs * 1e9)
	uo.Env = map[string]string{}
	for _, path := range o.EnvFiles {
		if err := readEnvFile(path, uo.Env); err != nil {
			return uo, err
		}
	}
	for _, kv := range o.Env {
		k, v, err := envPair("-e", kv, f.Getenv)
		if err != nil {
			return uo, err
		}
		uo.Env[k] = v
	}
	if len(o.Secrets) > 0 {
		uo.Secrets = map[string]string{}
		for _, kv := range o.Secrets {
			k, v, err := envPair("--secret", kv, f.Getenv)
			if err != nil {
				return uo, err
			}
			uo.Secrets[k] = v
		}
	}
	if len(o.Labels) > 0 {
		uo.Labels = map[string]string{}
		for _, kv := range o.Labels {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" || strings.HasPrefix(k, "rfenv.") {
				return uo, errs.New(errs.Usage, "--label %q: expected KEY=VALUE with a key outside the reserved rfenv. prefix", kv)
			}
			uo.Labels[k] = v
		}
	}
	return uo, nil
}

// envPair reads KEY=VALUE, or KEY alone to take the value from this process's environment. Error
// messages name the key, never the value.
func envPair(flag, kv string, getenv func(string) string) (string, string, error) {
	k, v, ok := strings.Cut(kv, "=")
	if k == "" {
		return "", "", errs.New(errs.Usage, "%s: expected KEY=VALUE or KEY, got an empty key", flag)
	}
	if !ok {
		v = getenv(k)
		if v == "" {
			return "", "", errs.New(errs.Usage, "%s %s: no value given and $%s is not set in this shell; use %s %s=VALUE or export it", flag, k, k, flag, k)
		}
	}
	return k, v, nil
}

// readEnvFile reads KEY=VALUE lines (blank lines and # comments skipped), as docker --env-file does.
func readEnvFile(path string, into map[string]string) error {
	fh, err := os.Open(path)
	if err != nil {
		return errs.New(errs.Usage, "--env-file: %v", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(strings.TrimPrefix(k, "export "))
		if !ok || k == "" {
			return errs.New(errs.Usage, "--env-file %s line %d: expected KEY=VALUE", path, n)
		}
		into[k] = v
	}
	if err := sc.Err(); err != nil {
		return errs.New(errs.Usage, "--env-file %s: %v", path, err)
	}
	return nil
}

// limits reads the pool's limits: the budget, sessions, and the overdue restart.
func (o *UpOptions) limits(uo *rfenv.UpOptions) error {
	if o.MaxInflight < 1 {
		return errs.New(errs.Usage, "--max-inflight %d: need at least 1 call per replica", o.MaxInflight)
	}
	if o.MaxSessions < 0 {
		return errs.New(errs.Usage, "--max-sessions %d: use 0 for no limit, or a positive number", o.MaxSessions)
	}
	uo.MaxInflight, uo.MaxSessions = o.MaxInflight, o.MaxSessions
	ttl, err := config.ParseDuration(o.SessionTTL)
	if err != nil || ttl <= 0 {
		return errs.New(errs.Usage, "--session-ttl %q: expected a positive duration such as 30m or 2h", o.SessionTTL)
	}
	uo.SessionTTL = ttl
	if o.OverdueRestart == "off" || o.OverdueRestart == "never" {
		uo.OverdueRestart = rfenv.NoOverdueRestart
		return nil
	}
	d, err := config.ParseDuration(o.OverdueRestart)
	if err != nil || d <= 0 {
		return errs.New(errs.Usage, "--overdue-restart %q: expected a positive duration such as 5m, or off", o.OverdueRestart)
	}
	uo.OverdueRestart = d
	return nil
}
