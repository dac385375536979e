package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/build"
	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/state"
)

// The trivial call every item makes: an async method that returns its argument.
var (
	trivialMethod = "echo"
	trivialKwargs = map[string]any{"x": 1}
	trivialReq    = pool.Request{Method: trivialMethod, Kwargs: trivialKwargs}
	trivialLine   = `{"x":1}`
)

// Images the benchmarks build from bench/envs.
const (
	shimTag    = "rfenv-bench-shim:latest"
	fastapiTag = "rfenv-bench-fastapi:latest"
	buildTag   = "rfenv-bench-build:latest"
)

// buildEnv builds bench/envs/NAME into tag on the local daemon.
func buildEnv(ctx context.Context, c *rfenv.Client, root, name, tag, baseImage string) (*build.Result, error) {
	opts := build.Options{Dir: filepath.Join(root, "bench", "envs", name), Tag: tag, BaseImage: baseImage, ProgressMode: "quiet"}
	if name == "fastapi" {
		opts.BuildArgs = map[string]string{"BASE": baseImage}
	}
	res, err := c.Build(ctx, nil, opts)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	return res[0].Result, nil
}

func randSuffix() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// endpointAddr is host:port of an environment's replica i.
func endpointAddr(env *rfenv.Env, i int) string {
	rec := env.Record()
	in := rec.Instances[i]
	port := in.Port
	if port == 0 {
		port = rec.Port
	}
	return net.JoinHostPort(in.Address, strconv.Itoa(port))
}

// harness holds what the items share: one state directory, one library client, the fixture images
// and the environments started so far (all removed by cleanup).
type harness struct {
	cfg      config
	docker   *client.Client
	stateDir string
	client   *rfenv.Client
	suffix   string

	mu     sync.Mutex
	images map[string]*build.Result // by tag
	envs   map[string]*rfenv.Env    // by key
	bin    string
	tmp    string
}

func newHarness(ctx context.Context, cfg config) (*harness, error) {
	docker, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := docker.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return nil, fmt.Errorf("the Docker daemon is required: %w", err)
	}
	if _, err := docker.ImageInspect(pctx, cfg.baseImage); err != nil {
		return nil, fmt.Errorf("base image %s missing (run `make base-image`): %w", cfg.baseImage, err)
	}
	tmp, err := os.MkdirTemp("", "rfenv-bench-")
	if err != nil {
		return nil, err
	}
	stateDir := filepath.Join(tmp, "state")
	c, err := rfenv.New(rfenv.WithStateDir(stateDir))
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &harness{
		cfg: cfg, docker: docker, stateDir: stateDir, client: c, suffix: randSuffix(), tmp: tmp,
		images: map[string]*build.Result{}, envs: map[string]*rfenv.Env{},
	}, nil
}

func (h *harness) logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func (h *harness) vlogf(format string, a ...any) {
	if h.cfg.verbose {
		h.logf(format, a...)
	}
}

// name is a container-name-safe environment name unique to this run (names are global on a daemon).
func (h *harness) name(key string) string { return "rfbench-" + h.suffix + "-" + key }

// image builds a fixture (shim or fastapi) once per run.
func (h *harness) image(ctx context.Context, which string) (string, error) {
	tag := map[string]string{"shim": shimTag, "fastapi": fastapiTag}[which]
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.images[tag]; ok {
		return tag, nil
	}
	res, err := buildEnv(ctx, h.client, h.cfg.root, which, tag, h.cfg.baseImage)
	if err != nil {
		return "", err
	}
	h.images[tag] = res
	return tag, nil
}

// env brings up (once per run) an environment of the fixture which with n replicas.
func (h *harness) env(ctx context.Context, key, which string, n int) (*rfenv.Env, error) {
	tag, err := h.image(ctx, which)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.envs[key]; ok {
		return e, nil
	}
	e, err := h.client.Up(ctx, tag, rfenv.WithName(h.name(key)), rfenv.WithReplicas(n))
	if err != nil {
		return nil, fmt.Errorf("up %s: %w", key, err)
	}
	h.envs[key] = e
	return e, nil
}

// sampler measures the CPU of env's containers (named by replica) during a run.
func (h *harness) sampler(label string, envs ...*rfenv.Env) *cpuSampler {
	cs := &cpuSampler{docker: h.docker}
	for _, e := range envs {
		rec := e.Record()
		for _, in := range rec.Instances {
			n := label
			if len(rec.Instances) > 1 {
				n = fmt.Sprintf("%s replica %d", label, in.Index)
			}
			cs.containers = append(cs.containers, in.ContainerID)
			cs.names = append(cs.names, n)
		}
	}
	return cs
}

// binary returns the rfenv binary, building one into the temporary directory when -bin is missing.
func (h *harness) binary(ctx context.Context) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bin != "" {
		return h.bin, nil
	}
	if _, err := os.Stat(h.cfg.bin); err == nil {
		h.bin = h.cfg.bin
		return h.bin, nil
	}
	out := filepath.Join(h.tmp, "rfenv")
	h.logf("%s missing: building it as `make build` does, into %s", h.cfg.bin, out)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = h.cfg.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, b)
	}
	h.bin = out
	return out, nil
}

// cleanup removes every environment and container of this run's state directory, the images it
// built (unless -keep-images) and its temporary files. It runs with a fresh context, so that it
// also works after Ctrl-C.
func (h *harness) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, e := range h.envs {
		e.Release()
	}
	if _, err := h.client.DownAll(ctx, rfenv.DownOptions{}); err != nil {
		h.logf("cleanup: down: %v", err)
	}
	h.client.Close()
	// Anything labelled with this state directory that down did not know about (an interrupted up).
	res, err := h.docker.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", containers.LabelState+"="+state.StateID(h.stateDir)),
	})
	if err == nil {
		for _, c := range res.Items {
			h.docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
	if !h.cfg.keepImages {
		var tags []string
		for tag, r := range h.images {
			tags = append(tags, tag)
			if r != nil && r.BaseImage != "" {
				tags = append(tags, r.BaseImage)
			} else if r == nil {
				tags = append(tags, tag+"-base") // built by a subprocess: the stage-1 tag, if any
			}
		}
		for _, t := range tags {
			if _, err := h.docker.ImageRemove(ctx, t, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
				h.vlogf("cleanup: remove image %s: %v", t, err)
			}
		}
	}
	h.docker.Close()
	os.RemoveAll(h.tmp)
}

// rawCaller POSTs a fixed body to /call with plain net/http: the baseline the library is compared
// with, and the load generator for comparing servers.
type rawCaller struct {
	hc      *http.Client
	url     string
	body    []byte
	headers http.Header
}

func newRawCaller(addr, token string, body []byte, conns int) *rawCaller {
	return &rawCaller{
		hc: &http.Client{Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: 90 * time.Second,
			// The library sends no Accept-Encoding either: same headers on the wire.
			DisableCompression: true,
		}},
		url:  "http://" + addr + "/call",
		body: body,
		headers: http.Header{
			"Content-Type":     {"application/json"},
			"Authorization":    {"Bearer " + token},
			pool.TimeoutHeader: {"299950"}, // what the library sends for its default 5 min deadline
		},
	}
}

func (r *rawCaller) call(ctx context.Context) error {
	_, err := r.do(ctx)
	return err
}

func (r *rawCaller) do(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return nil, err
	}
	req.Header = r.headers.Clone()
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, data)
	}
	return data, nil
}

func (r *rawCaller) close() { r.hc.CloseIdleConnections() }

// interleave runs a and b sequentially in alternating rounds (a then b, then b then a, ...) after a
// warm-up, and returns each one's per-call durations: drift on a shared machine hits both alike.
func interleave(ctx context.Context, rounds, perRound int, a, b func(context.Context) error) (da, db []time.Duration, err error) {
	for i := 0; i < 100; i++ {
		if err := a(ctx); err != nil {
			return nil, nil, err
		}
		if err := b(ctx); err != nil {
			return nil, nil, err
		}
	}
	runOne := func(f func(context.Context) error, out *[]time.Duration) error {
		for i := 0; i < perRound; i++ {
			t0 := time.Now()
			if err := f(ctx); err != nil {
				return err
			}
			*out = append(*out, time.Since(t0))
		}
		return nil
	}
	for r := 0; r < rounds; r++ {
		first, second := a, b
		fo, so := &da, &db
		if r%2 == 1 {
			first, second, fo, so = b, a, &db, &da
		}
		if err := runOne(first, fo); err != nil {
			return nil, nil, err
		}
		if err := runOne(second, so); err != nil {
			return nil, nil, err
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
	}
	return da, db, nil
}
