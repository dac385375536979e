package main

import (
	"archive/tar"
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

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/build"
	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
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
	floor  [3]string // the floor server's address, token and container ID
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
	for _, b := range [][]string{
		{"-o", filepath.Join(h.tmp, protocol.FullBinaryName)},
		{"-tags", "rfenvlean", "-o", out},
	} {
		cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-trimpath", "-ldflags", "-s -w"}, append(b, ".")...)...)
		cmd.Dir = h.cfg.root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %v: %v: %s", b, err, out)
		}
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
	out, err := interleaveN(ctx, rounds, perRound, a, b)
	if err != nil {
		return nil, nil, err
	}
	return out[0], out[1], nil
}

const floorTag = "rfenv-bench-floor:latest"

// floorServer starts (once per run) a container of bench/floorsrv, a minimal Go HTTP server doing
// the shim's work for the trivial method: the floor of a call into a container on this machine. It
// returns its address, its token and its container ID.
func (h *harness) floorServer(ctx context.Context) (addr, token, id string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.floor[0] != "" {
		return h.floor[0], h.floor[1], h.floor[2], nil
	}
	bin := filepath.Join(h.tmp, "floorsrv")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./bench/floorsrv")
	cmd.Dir = h.cfg.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", "", fmt.Errorf("build bench/floorsrv: %v: %s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", "", "", err
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	tw.WriteHeader(&tar.Header{Name: "floorsrv", Mode: 0o755, Size: int64(len(data)), ModTime: time.Now()})
	tw.Write(data)
	tw.Close()
	res, err := h.docker.ImageImport(ctx, client.ImageImportSource{Source: &tarball, SourceName: "-"}, floorTag,
		client.ImageImportOptions{Changes: []string{`CMD ["/floorsrv"]`}})
	if err != nil {
		return "", "", "", fmt.Errorf("import the floor server image: %w", err)
	}
	io.Copy(io.Discard, res)
	res.Close()
	h.images[floorTag] = &build.Result{} // no stage-1 tag to remove
	token = randSuffix() + randSuffix()
	initTrue := true
	cr, err := h.docker.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: h.name("floorsrv"),
		Config: &container.Config{
			Image:  floorTag,
			Env:    []string{"RFENV_TOKEN=" + token, "RFENV_PORT=8000"},
			Labels: map[string]string{containers.LabelState: state.StateID(h.stateDir)},
		},
		HostConfig: &container.HostConfig{Init: &initTrue},
	})
	if err != nil {
		return "", "", "", err
	}
	if _, err := h.docker.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		return "", "", "", err
	}
	ins, err := h.docker.ContainerInspect(ctx, cr.ID, client.ContainerInspectOptions{})
	if err != nil {
		return "", "", "", err
	}
	addr = net.JoinHostPort(containers.Address(ins.Container, "").String(), "8000")
	hc := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := hc.Get("http://" + addr + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return "", "", "", fmt.Errorf("the floor server at %s did not answer /health", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.floor = [3]string{addr, token, cr.ID}
	return addr, token, cr.ID, nil
}

// interleaveN is interleave for any number of sides: each round runs them all, rotating which goes
// first, and returns each side's per-call durations.
func interleaveN(ctx context.Context, rounds, perRound int, sides ...func(context.Context) error) ([][]time.Duration, error) {
	out := make([][]time.Duration, len(sides))
	for i := 0; i < 100; i++ {
		for _, f := range sides {
			if err := f(ctx); err != nil {
				return nil, err
			}
		}
	}
	for r := 0; r < rounds; r++ {
		for j := range sides {
			k := (j + r) % len(sides)
			for i := 0; i < perRound; i++ {
				t0 := time.Now()
				if err := sides[k](ctx); err != nil {
					return nil, err
				}
				out[k] = append(out[k], time.Since(t0))
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return out, nil
}
