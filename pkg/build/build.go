// Package build turns an environment directory (env.py, optionally a Dockerfile and
// requirements.txt) into a Docker image, through the BuildKit that dockerd embeds.
//
// A build has up to two stages, one BuildKit solve each:
//
//   - Stage 1 builds the directory with its own Dockerfile, or with a generated one when it has none
//     (the generated Dockerfile reaches BuildKit through a separate "dockerfile" mount pointing at a
//     temporary directory: nothing is written into the environment directory).
//   - Function kind: stage 1 is tagged TAG-base and stage 2 adds the shim (FROM TAG-base, COPY
//     the shim's files, CMD the shim, labels) and is tagged TAG.
//   - HTTP kind with the generated Dockerfile: stage 1 is tagged TAG directly (uvicorn CMD, labels
//     through the frontend's label: attributes); there is no TAG-base.
//   - HTTP kind with the user's Dockerfile: stage 1 is tagged TAG-base; its configuration gives the
//     port (label rfenv.port, else the single EXPOSEd port, else 8000) and stage 2 only adds the
//     labels, tagged TAG. The user's CMD is kept.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/client"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/term"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/shim"
)

// Build builds the environment in opts.Dir into the image opts.Tag on the daemon docker talks to
// (local or through an SSH-tunnelled dialer: BuildKit is reached through the same connection).
func Build(ctx context.Context, docker *client.Client, opts Options) (*Result, error) {
	start := time.Now()
	if docker == nil {
		return nil, errors.New("cannot build: no Docker client given")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := opts.Dir
	if dir == "" {
		dir = "."
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve the environment directory %s: %w", dir, err)
	}

	kind, err := ParseKind(string(opts.Type))
	if err != nil {
		return nil, errs.Wrap(errs.Usage, err)
	}
	src, err := readEnvPy(dir)
	if err != nil {
		return nil, err
	}
	if kind == "" {
		kind = DetectSource(src)
		log.Debug("detected environment type", "dir", absDir, "type", kind)
	}
	finalTag, baseTag, err := imageTags(opts.Tag)
	if err != nil {
		return nil, errs.Wrap(errs.Usage, err)
	}
	disp, err := newDisplayFactory(opts.Progress, opts.ProgressMode)
	if err != nil {
		return nil, errs.Wrap(errs.Usage, err)
	}

	userDockerfile := regularFile(filepath.Join(absDir, "Dockerfile"))
	if userDockerfile && opts.BaseImage != "" {
		log.Warn("the base image option is ignored: the directory has its own Dockerfile", "dir", absDir, "base_image", opts.BaseImage)
	}

	tmp, err := os.MkdirTemp("", "rfenv-build-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a temporary directory for the build: %w", err)
	}
	defer os.RemoveAll(tmp)

	bk, err := bkclient.New(ctx, "",
		bkclient.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return docker.DialHijack(ctx, "/grpc", "h2c", nil)
		}),
		bkclient.WithSessionDialer(func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return docker.DialHijack(ctx, "/session", proto, meta)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the Docker daemon's BuildKit: %w", err)
	}
	defer bk.Close()

	b := &builder{bk: bk, docker: docker, log: log, disp: disp, dir: absDir}
	res := &Result{Kind: kind}

	// Stage 1.
	s1 := stage{
		name:      "stage 1 of 2",
		image:     baseTag,
		contextFS: absDir,
		sharedKey: sharedKey("context", absDir),
		attrs:     labelAttrs(opts.Labels),
		noCache:   opts.NoCache,
		buildArgs: opts.BuildArgs,
		hint:      fmt.Sprintf("fix that step of %s or the files it uses, then build again", filepath.Join(absDir, "Dockerfile")),
	}
	if userDockerfile {
		s1.dockerfileDir = absDir
	} else {
		base := opts.BaseImage
		if base == "" {
			base = DefaultBaseImage
		}
		if err := checkBaseImage(base); err != nil {
			return nil, errs.Wrap(errs.Usage, err)
		}
		reqs, err := hasRequirements(absDir)
		if err != nil {
			return nil, err
		}
		s1.dockerfileDir = filepath.Join(tmp, "stage1")
		text := defaultDockerfile(base, kind, reqs)
		if err := writeFiles(s1.dockerfileDir, map[string][]byte{"Dockerfile": []byte(text)}); err != nil {
			return nil, err
		}
		log.Debug("generated Dockerfile", "dir", absDir, "dockerfile", text)
		s1.hint = fmt.Sprintf("%s has no Dockerfile, so rfenv used its default one (FROM %s); check requirements.txt and env.py, or write your own Dockerfile", absDir, base)
		if kind == KindHTTP {
			s1.name = "stage 1 of 1"
			s1.image = finalTag
			s1.attrs["label:"+LabelType] = string(KindHTTP)
			s1.attrs["label:"+LabelPort] = strconv.Itoa(shim.DefaultPort)
			res.Port = shim.DefaultPort
		}
	}
	id, err := b.solve(ctx, s1)
	if err != nil {
		return nil, err
	}
	res.Image, res.ImageID = s1.image, id
	if s1.image == finalTag {
		res.Duration = time.Since(start)
		return res, nil
	}
	res.BaseImage = baseTag

	// Stage 2.
	s2dir := filepath.Join(tmp, "stage2")
	files := map[string][]byte{}
	ins, err := docker.ImageInspect(ctx, baseTag)
	if err != nil {
		return nil, errs.Wrap(errs.Infra, fmt.Errorf("cannot inspect the stage-1 image %s: %w", baseTag, err))
	}
	cfg := ins.Config
	if cfg == nil {
		cfg = &dockerspec.DockerOCIImageConfig{}
	}
	switch kind {
	case KindFunction:
		res.Port = shim.DefaultPort
		appDir := shimAppDir(cfg.WorkingDir, cfg.Env)
		if appDir != "" {
			log.Debug("the shim will load env.py from the image's working directory", "image", baseTag, "dir", appDir)
		}
		files["Dockerfile"] = []byte(shimDockerfile(baseTag, appDir))
		for name, b := range shim.Files() {
			files[shimContextDir+"/"+name] = b
		}
	case KindHTTP:
		res.Port = ImagePort(cfg.Labels, cfg.ExposedPorts)
		files["Dockerfile"] = []byte(labelDockerfile(baseTag, res.Port))
	}
	if err := writeFiles(s2dir, files); err != nil {
		return nil, err
	}
	id, err = b.solve(ctx, stage{
		name:          "stage 2 of 2",
		image:         finalTag,
		contextFS:     s2dir,
		dockerfileDir: s2dir,
		sharedKey:     sharedKey("stage2", absDir),
		attrs:         labelAttrs(opts.Labels),
		hint:          "stage 2 only adds rfenv's shim and labels to " + baseTag + "; check that the image has python3 and that the Docker daemon has disk space",
	})
	if err != nil {
		return nil, err
	}
	res.Image, res.ImageID = finalTag, id
	res.Duration = time.Since(start)
	return res, nil
}

// sharedKey names BuildKit's cache of a synced directory. It must differ between directories: with a
// shared key, BuildKit reuses the previous sync and skips files whose size and mtime match, so a
// different directory's Dockerfile of the same size and mtime was built instead.
func sharedKey(purpose, dir string) string {
	sum := sha256.Sum256([]byte("rfenv\x00" + purpose + "\x00" + dir))
	return "rfenv-" + hex.EncodeToString(sum[:16])
}

func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", dir, err)
	}
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", filepath.Dir(filepath.Join(dir, name)), err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("cannot write %s: %w", filepath.Join(dir, name), err)
		}
	}
	return nil
}

// stage is one BuildKit solve.
type stage struct {
	name          string // for messages: "stage 1"
	image         string // the tag it exports
	contextFS     string // the "context" local mount
	dockerfileDir string // the "dockerfile" local mount (holds "Dockerfile")
	sharedKey     string
	attrs         map[string]string // extra frontend attributes
	buildArgs     map[string]string
	noCache       bool
	hint          string // what to do when a step fails
}

type builder struct {
	bk     *bkclient.Client
	docker *client.Client
	log    *slog.Logger
	disp   displayFactory
	dir    string
}

// solve runs one stage and returns the exported image's ID, once more (twice at most) when the
// attempt failed before anything was built: on a loaded machine the build's session can take longer
// to come up through dockerd than the daemon waits for it ("no active session"), or the gRPC
// connection to the daemon's BuildKit cannot be dialled in time.
func (b *builder) solve(ctx context.Context, st stage) (string, error) {
	id, err := b.solveOnce(ctx, st)
	for try := 1; try < 3 && err != nil && ctx.Err() == nil && nothingBuilt(err); try++ {
		b.log.Warn("BuildKit could not start the build; trying again", "image", st.image, "try", try+1, "err", err)
		id, err = b.solveOnce(ctx, st)
	}
	return id, err
}

// nothingBuilt says whether a solve failed before BuildKit ran any step.
func nothingBuilt(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "no active session") ||
		strings.Contains(msg, "code = Unavailable") && strings.Contains(msg, "while dialing")
}

func (b *builder) solveOnce(ctx context.Context, st stage) (string, error) {
	t0 := time.Now()
	ctxFS, err := fsutil.NewFS(st.contextFS)
	if err != nil {
		return "", fmt.Errorf("cannot read the build context %s: %w", st.contextFS, err)
	}
	dfFS, err := fsutil.NewFS(st.dockerfileDir)
	if err != nil {
		return "", fmt.Errorf("cannot read the Dockerfile directory %s: %w", st.dockerfileDir, err)
	}
	attrs := map[string]string{"filename": "Dockerfile"}
	maps.Copy(attrs, st.attrs)
	for _, k := range slices.Sorted(maps.Keys(st.buildArgs)) {
		attrs["build-arg:"+k] = st.buildArgs[k]
	}
	if st.noCache {
		attrs["no-cache"] = ""
	}
	opt := bkclient.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS},
		SharedKey:     st.sharedKey,
		Exports:       []bkclient.ExportEntry{{Type: "moby", Attrs: map[string]string{"name": st.image}}},
	}

	disp, err := b.disp(st)
	if err != nil {
		return "", errs.Wrap(errs.Usage, err)
	}
	statusCh := make(chan *bkclient.SolveStatus)
	displayCh := make(chan *bkclient.SolveStatus)
	col := newCollector()
	go func() {
		// Solve closes statusCh when it returns; until then every status must be read, or Solve
		// blocks: so this loop never stops early, whatever happens to ctx.
		for s := range statusCh {
			col.add(s)
			displayCh <- s
		}
		close(displayCh)
	}()
	displayDone := make(chan []bkclient.VertexWarning, 1)
	go func() {
		warnings, _ := disp.UpdateFrom(context.Background(), displayCh)
		displayDone <- warnings
	}()

	b.log.Debug("build stage starting", "stage", st.name, "image", st.image, "context", st.contextFS, "dockerfile_dir", st.dockerfileDir)
	resp, solveErr := b.bk.Solve(ctx, nil, opt, statusCh)
	warnings := <-displayDone
	for _, w := range warnings {
		b.log.Warn("build warning", "image", st.image, "warning", string(w.Short))
	}
	if solveErr != nil {
		return "", b.stageError(ctx, st, col, solveErr)
	}
	id := resp.ExporterResponse["containerimage.digest"]
	if id == "" {
		ins, err := b.docker.ImageInspect(ctx, st.image)
		if err != nil {
			return "", fmt.Errorf("built %s but cannot inspect it: %w", st.image, err)
		}
		id = ins.ID
	}
	b.log.Debug("build stage done", "stage", st.name, "image", st.image, "id", id, "duration", time.Since(t0))
	return id, nil
}

func (b *builder) stageError(ctx context.Context, st stage, col *collector, solveErr error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("building %s interrupted: %w", st.image, context.Cause(ctx))
	}
	if se := col.failure(); se != nil {
		se.Image, se.Hint, se.cause = st.image, st.hint, solveErr
		if ref, ok := strings.CutPrefix(se.Step, "[internal] load metadata for "); ok {
			se.Hint = fmt.Sprintf("the image %s could not be found locally or pulled: pull it (docker pull %s) or use an image the daemon already has", ref, ref)
		}
		return se
	}
	msg := solveErr.Error()
	if strings.Contains(msg, "Unimplemented") || strings.Contains(msg, "unknown service moby.buildkit") {
		return errs.Wrap(errs.Infra, fmt.Errorf("building %s: the Docker daemon does not offer BuildKit (it needs Docker 18.09 or later on Linux): %w", st.image, solveErr))
	}
	if strings.Contains(msg, "dockerfile parse error") || strings.Contains(msg, "failed to create LLB definition") {
		return fmt.Errorf("building %s: invalid Dockerfile: %w\nfix %s and build again", st.image, solveErr, filepath.Join(st.dockerfileDir, "Dockerfile"))
	}
	return fmt.Errorf("building %s (%s, %s) failed: %w", st.image, st.name, b.dir, solveErr)
}

type displayFactory func(st stage) (progressui.Display, error)

// newDisplayFactory checks the progress mode once; each stage then gets its own display.
func newDisplayFactory(w io.Writer, mode string) (displayFactory, error) {
	switch strings.ToLower(mode) {
	case "", "auto", "tty", "plain", "quiet", "rawjson":
	default:
		return nil, fmt.Errorf("unknown progress mode %q: use auto, plain, quiet or rawjson", mode)
	}
	if w == nil {
		w = io.Discard
		mode = string(progressui.QuietMode)
	}
	var m progressui.DisplayMode
	switch strings.ToLower(mode) {
	case "", "auto":
		// progressui's tty display fails on anything but a console.
		m = progressui.PlainMode
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			m = progressui.TtyMode
		}
	case "tty":
		f, ok := w.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return nil, errors.New("progress mode tty needs a terminal: use auto, plain, quiet or rawjson")
		}
		m = progressui.TtyMode
	case "plain":
		m = progressui.PlainMode
	case "quiet":
		m = progressui.QuietMode
	default:
		m = progressui.RawJSONMode
	}
	stages := 0
	return func(st stage) (progressui.Display, error) {
		if stages++; stages > 1 && m == progressui.PlainMode {
			_, _ = io.WriteString(w, "\n")
		}
		d, err := progressui.NewDisplay(w, m,
			progressui.WithPhase("Building "+st.image),
			progressui.WithDesc(fmt.Sprintf("rfenv build, %s: %s", st.name, st.image), ""))
		if err != nil {
			return progressui.Display{}, fmt.Errorf("cannot show build progress: %w", err)
		}
		return d, nil
	}, nil
}
