package cmd

import (
	"context"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/pkg/build"
	"github.com/rfenv/rfenv/pkg/errs"
)

// BuildOptions are `rfenv build`'s inputs.
type BuildOptions struct {
	Dir       string
	Tag       string
	Hosts     []string
	NoCache   bool
	BuildArgs []string
	Progress  string
	Type      string
	BaseImage string
	JSON      bool
	Push      bool
}

func newBuildCmd(f *Factory) *cobra.Command {
	o := &BuildOptions{}
	c := &cobra.Command{
		Use:   "build DIR|GIT_URL -t TAG",
		Short: "Build an environment directory into an image",
		Long: `Build DIR (which holds env.py) into a Docker image with the BuildKit inside dockerd.

Stage 1 builds DIR with its Dockerfile, or with a default one (FROM --base-image, pip install of
requirements.txt, DIR copied to /app), and tags it TAG-base. For a function-based environment
(an Actor class or functions in env.py) stage 2 adds rfenv's server and is tagged TAG; an http-based
one (a FastAPI or Starlette app in env.py) is tagged TAG by stage 1.

DIR may also be a git repository, written as Docker writes it: URL#REF:SUBDIR, where REF (a branch,
tag or commit) and SUBDIR are optional, and URL is https://, ssh://, git://, file:// or
user@host:path. rfenv shallow-clones it with git (your git and SSH credentials apply) into a
temporary directory, removed afterwards, and records the commit in the image's
org.opencontainers.image.revision label.

Progress goes to stderr; stdout prints only the image reference.`,
		Example: `  rfenv build ./environments/affine -t affine:latest
  rfenv build . -t myenv --base-image rfenv-python:bookworm --progress plain
  rfenv build . -t myenv --host ssh://gpu-box   # build on a remote daemon
  rfenv build git@github.com:org/envs.git#v1.0:environments/web -t web:v1.0`,
		GroupID: groupLifecycle,
		Args:    exactArgs(1, "one environment directory or git URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Dir = args[0]
			if !cmd.Flags().Changed("host") {
				o.Hosts = f.Config.Strings(config.KeyHosts)
			}
			if !cmd.Flags().Changed("base-image") && f.Config.Source(config.KeyBaseImage) == "default" {
				o.BaseImage = "" // the builder's own default; no warning for a directory with a Dockerfile
			}
			return runBuild(cmd.Context(), f, o)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&o.Tag, "tag", "t", "", "image tag, e.g. affine:latest (required)")
	fl.StringArrayVar(&o.Hosts, "host", nil, "Docker host to build on: localhost, unix:///path, ssh://[user@]host[:port] (repeatable)")
	fl.BoolVar(&o.NoCache, "no-cache", false, "rebuild every step")
	fl.StringArrayVar(&o.BuildArgs, "build-arg", nil, "build argument KEY=VALUE (repeatable)")
	fl.StringVar(&o.Progress, "progress", f.Config.String(config.KeyProgress), "progress output: auto, plain, quiet, rawjson")
	fl.StringVar(&o.Type, "type", "", "environment type: function or http (default: detect from env.py)")
	fl.StringVar(&o.BaseImage, "base-image", f.Config.String(config.KeyBaseImage), "FROM of the default Dockerfile (when DIR has none)")
	fl.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	fl.BoolVar(&o.Push, "push", false, "push the image to its registry after building (tag it REGISTRY/NAME:TAG), so a k8s:// cluster can pull it")
	return c
}

func runBuild(ctx context.Context, f *Factory, o *BuildOptions) error {
	if o.Tag == "" {
		return errs.New(errs.Usage, "no tag given: rfenv build %s -t NAME[:TAG]", o.Dir)
	}
	kind, err := build.ParseKind(o.Type)
	if err != nil {
		return errs.Wrap(errs.Usage, err)
	}
	args := map[string]string{}
	for _, kv := range o.BuildArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return errs.New(errs.Usage, "--build-arg %q: expected KEY=VALUE", kv)
		}
		args[k] = v
	}
	switch o.Progress {
	case "auto", "plain", "quiet", "rawjson", "tty":
	default:
		return errs.New(errs.Usage, "--progress %q: use auto, plain, quiet or rawjson", o.Progress)
	}
	if f.Quiet {
		o.Progress = "quiet"
	}
	client, err := f.Client()
	if err != nil {
		return err
	}
	p := f.Printer()
	results, err := buildSource(ctx, f, client, o.Hosts, build.Options{
		Dir: o.Dir, Tag: o.Tag, Type: kind, BaseImage: o.BaseImage, BuildArgs: args, NoCache: o.NoCache,
		Progress: f.IO.ErrOut, ProgressMode: o.Progress,
	})
	if err != nil {
		return err
	}
	if o.Push {
		var progress io.Writer
		if !f.Quiet {
			progress = f.IO.ErrOut
		}
		if err := client.Push(ctx, results[0].Host, results[0].Image, progress); err != nil {
			return err
		}
		p.Success("pushed %s", results[0].Image)
	}
	if o.JSON {
		views := make([]buildView, len(results))
		for i, r := range results {
			views[i] = buildView{Host: r.Host, Image: r.Image, ImageID: r.ImageID, BaseImage: r.BaseImage,
				Type: string(r.Kind), Port: r.Port, Seconds: r.Duration.Seconds()}
		}
		if len(views) == 1 {
			return p.JSON(views[0])
		}
		return p.JSON(views)
	}
	for _, r := range results {
		p.Success("built %s (%s) on %s in %s", r.Image, r.Kind, r.Host, r.Duration.Round(1e7))
	}
	_, err = f.IO.Out.Write([]byte(results[0].Image + "\n"))
	return err
}

// buildView is a build's result as --json prints it.
type buildView struct {
	Host      string  `json:"host"`
	Image     string  `json:"image"`
	ImageID   string  `json:"image_id"`
	BaseImage string  `json:"base_image,omitempty"`
	Type      string  `json:"type"`
	Port      int     `json:"port"`
	Seconds   float64 `json:"seconds"`
}
