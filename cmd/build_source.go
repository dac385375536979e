package cmd

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/pkg/build"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// gitEnvKeys are the variables passed on to git when set in rfenv's environment (tests and
// wrappers set them through the Factory's getenv; git also inherits the process environment).
var gitEnvKeys = []string{"GIT_SSH_COMMAND", "GIT_SSH", "GIT_CONFIG_GLOBAL", "SSH_AUTH_SOCK"}

// buildSource builds opts.Dir, which is a directory or a git URL (URL#ref:subdir): a git source is
// shallow-cloned into a temporary directory, removed once the build is done, and its commit is
// recorded in the image's labels.
func buildSource(ctx context.Context, f *Factory, client *rfenv.Client, hosts []string, opts build.Options) ([]rfenv.BuildResult, error) {
	if !build.IsGitURL(opts.Dir) {
		return client.Build(ctx, hosts, opts)
	}
	src, err := build.ParseGitSource(opts.Dir)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, k := range gitEnvKeys {
		if v := f.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	p := f.Printer()
	if !f.Quiet {
		p.Info("cloning %s…", src)
	}
	co, err := build.CloneGit(ctx, src, build.GitOptions{Env: env})
	if err != nil {
		return nil, err
	}
	defer co.Remove()
	if !f.Quiet {
		p.Info("building commit %.12s", co.Commit)
	}
	opts.Dir = co.Dir
	labels := co.Labels()
	for k, v := range opts.Labels {
		labels[k] = v
	}
	opts.Labels = labels
	return client.Build(ctx, hosts, opts)
}

// derivedName is the environment name a directory or git source suggests: its last path element
// (the subdirectory's, for a git source), lower-cased and reduced to the characters an image name
// allows. "./environments/Affine" → "affine"; "git@h:org/envs.git#v1:web" → "web".
func derivedName(dirOrURL string) string {
	base := dirOrURL
	if build.IsGitURL(dirOrURL) {
		if src, err := build.ParseGitSource(dirOrURL); err == nil {
			base = src.Subdir
			if base == "" {
				base = strings.TrimSuffix(src.URL, ".git")
			}
		}
	} else if abs, err := filepath.Abs(dirOrURL); err == nil {
		base = abs
	}
	base = strings.TrimRight(filepath.ToSlash(base), "/")
	if i := strings.LastIndexAny(base, "/:"); i >= 0 {
		base = base[i+1:]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == '_' || r == '.':
			if b.Len() > 0 {
				b.WriteRune(r)
			}
		default:
			if b.Len() > 0 {
				b.WriteRune('-')
			}
		}
	}
	name := strings.TrimRight(b.String(), "-_.")
	if name == "" {
		name = "env"
	}
	return name
}

// derivedTag is the image tag for a directory built without -t.
func derivedTag(dirOrURL string) string { return derivedName(dirOrURL) + ":latest" }

// buildFirst is up --build: build o.Build on the hosts up will use, with build's progress on stderr,
// and return the tag to start.
func (o *UpOptions) buildFirst(ctx context.Context, f *Factory, client *rfenv.Client) (string, error) {
	tag := o.Tag
	if tag == "" {
		tag = derivedTag(o.Build)
	}
	mode := f.Config.String(config.KeyProgress)
	var progress io.Writer = f.IO.ErrOut
	if f.Quiet || o.JSON {
		mode = "quiet"
	}
	res, err := buildSource(ctx, f, client, o.Hosts, build.Options{
		Dir: o.Build, Tag: tag, BaseImage: o.BaseImage, Progress: progress, ProgressMode: mode,
	})
	if err != nil {
		return "", err
	}
	if !f.Quiet {
		f.Printer().Success("built %s (%s) in %s", res[0].Image, res[0].Kind, res[0].Duration.Round(time.Millisecond))
	}
	if o.Name == "" {
		o.Name = rfenv.NameFromImage(res[0].Image)
	}
	return res[0].Image, nil
}
