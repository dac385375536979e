package build

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
	"github.com/rfenv/rfenv/shim"
)

const functionEnvPy = `"""A function environment."""


def add(a: int, b: int) -> int:
    return a + b
`

const fastapiEnvPy = `from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def root():
    return {"ok": True, "who": "rfenv-build-test"}
`

func newDocker(t testing.TB) *client.Client {
	t.Helper()
	dockertest.Require(t)
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// envDir writes files into a fresh directory.
func envDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// uniqueTag returns a tag no other test uses, and removes the images built under it (both tags and
// every image ID seen) when the test ends.
type images struct {
	t      testing.TB
	docker *client.Client
	ids    []string
}

func uniqueTag(t testing.TB, docker *client.Client, name string) (string, *images) {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	tag := fmt.Sprintf("rfenv-buildtest-%s-%s:v1", name, hex.EncodeToString(rnd[:]))
	im := &images{t: t, docker: docker}
	t.Cleanup(func() {
		ctx := context.Background()
		refs := append([]string{tag, tag + "-base"}, im.ids...)
		for _, ref := range refs {
			_, _ = docker.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		}
	})
	return tag, im
}

// add records a build's images, so that those a later build of the same tag leaves untagged are
// removed too.
func (im *images) add(r *Result) {
	if r == nil {
		return
	}
	im.ids = append(im.ids, r.ImageID)
	if r.BaseImage != "" {
		if ins, err := im.docker.ImageInspect(context.Background(), r.BaseImage); err == nil {
			im.ids = append(im.ids, ins.ID)
		}
	}
}

func inspect(t testing.TB, docker *client.Client, ref string) client.ImageInspectResult {
	t.Helper()
	ins, err := docker.ImageInspect(context.Background(), ref)
	if err != nil {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	if ins.Config == nil {
		t.Fatalf("image %s has no config", ref)
	}
	return ins
}

// runPython runs a Python snippet in the image (bypassing its CMD) and returns its output.
func runPython(t testing.TB, image, code string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "run", "--rm", "--entrypoint", "python3", image, "-c", code).CombinedOutput()
	if err != nil {
		t.Fatalf("docker run %s: %v: %s", image, err, out)
	}
	return strings.TrimSpace(string(out))
}

// serve starts a container of the image with its own CMD and returns the body of GET path once the
// server answers 200.
func serve(t testing.TB, image string, port int, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "run", "-d", "-e", "RFENV_TOKEN=test-token", image).CombinedOutput()
	if err != nil {
		t.Fatalf("docker run %s: %v: %s", image, err, out)
	}
	id := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", id).Run() })
	out, err = exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", id).CombinedOutput()
	if err != nil {
		t.Fatalf("docker inspect: %v: %s", err, out)
	}
	url := fmt.Sprintf("http://%s:%d%s", strings.TrimSpace(string(out)), port, path)
	var last string
	for ctx.Err() == nil {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body)
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	logs, _ := exec.Command("docker", "logs", id).CombinedOutput()
	t.Fatalf("GET %s never answered 200 (last: %s); container logs:\n%s", url, last, logs)
	return ""
}

func build(t testing.TB, docker *client.Client, im *images, opts Options) (*Result, string) {
	t.Helper()
	var progress bytes.Buffer
	if opts.Progress == nil {
		opts.Progress = &progress
		opts.ProgressMode = "plain"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Build(ctx, docker, opts)
	im.add(res)
	if err != nil {
		t.Fatalf("Build: %v\nprogress:\n%s", err, progress.String())
	}
	return res, progress.String()
}

func checkFunctionImage(t *testing.T, docker *client.Client, res *Result, tag string) {
	t.Helper()
	if res.Kind != KindFunction || res.Image != tag || res.BaseImage != tag+"-base" || res.Port != shim.DefaultPort || res.ImageID == "" {
		t.Errorf("result = %+v", res)
	}
	ins := inspect(t, docker, tag)
	if ins.ID != res.ImageID {
		t.Errorf("image ID %s, result says %s", ins.ID, res.ImageID)
	}
	cfg := ins.Config
	wantLabels := map[string]string{LabelType: "function", LabelShimVersion: shim.Version, LabelPort: "8000"}
	for k, v := range wantLabels {
		if cfg.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, cfg.Labels[k], v, cfg.Labels)
		}
	}
	if want := []string{"python3", shim.ServerPath}; !slices.Equal(cfg.Cmd, want) {
		t.Errorf("Cmd = %q, want %q", cfg.Cmd, want)
	}
	if len(cfg.Entrypoint) != 0 {
		t.Errorf("Entrypoint = %q, want none", cfg.Entrypoint)
	}
	if !slices.Contains(cfg.Env, "RFENV_PORT=8000") {
		t.Errorf("Env = %q, want RFENV_PORT=8000", cfg.Env)
	}
	if cfg.StopSignal != "SIGTERM" {
		t.Errorf("StopSignal = %q", cfg.StopSignal)
	}
	base := inspect(t, docker, tag+"-base")
	if n := len(base.RootFS.Layers); n == 0 || len(ins.RootFS.Layers) <= n || !slices.Equal(ins.RootFS.Layers[:n], base.RootFS.Layers) {
		t.Errorf("the final image does not build on %s-base", tag)
	}
	if _, ok := base.Config.Labels[LabelShimVersion]; ok {
		t.Errorf("%s-base has the shim label", tag)
	}
}

func TestBuildFunctionUserDockerfile(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "fn-user")
	dir := envDir(t, map[string]string{
		"env.py":     functionEnvPy,
		"Dockerfile": "FROM " + dockertest.BaseImage() + "\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\nWORKDIR /app\nCOPY . /app\n",
	})
	res, _ := build(t, docker, im, Options{Dir: dir, Tag: tag, BuildArgs: map[string]string{"GREETING": "hello-arg"}})
	checkFunctionImage(t, docker, res, tag)
	got := runPython(t, tag, "import os; print(os.path.exists('/rfenv/shim.py'), os.path.exists('/app/env.py'), open('/greeting').read().strip())")
	if got != "True True hello-arg" {
		t.Errorf("in the image: %q", got)
	}
	// every file of the shim, in one container: their sha256 by path
	sums := runPython(t, tag, "import hashlib, os\nfor d, _, fs in os.walk('"+shim.ImageDir+"'):\n"+
		"    for f in sorted(fs):\n        p = os.path.join(d, f)\n"+
		"        print(os.path.relpath(p, '"+shim.ImageDir+"'), hashlib.sha256(open(p, 'rb').read()).hexdigest())")
	var want []string
	for name, b := range shim.Files() {
		want = append(want, fmt.Sprintf("%s %x", name, sha256.Sum256(b)))
	}
	listed := strings.Split(sums, "\n")
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("the shim in the image:\n%s\nwant shim.Files():\n%s", strings.Join(listed, "\n"), strings.Join(want, "\n"))
	}
	if body := serve(t, tag, shim.DefaultPort, "/health"); !strings.Contains(body, `"ok"`) {
		t.Errorf("/health = %s", body)
	}
}

func TestBuildFunctionOtherWorkdir(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "fn-workdir")
	dir := envDir(t, map[string]string{
		"env.py":     functionEnvPy,
		"Dockerfile": "FROM " + dockertest.BaseImage() + "\nWORKDIR /srv/env\nCOPY env.py .\n",
	})
	res, _ := build(t, docker, im, Options{Dir: dir, Tag: tag})
	checkFunctionImage(t, docker, res, tag)
	if cfg := inspect(t, docker, tag).Config; !slices.Contains(cfg.Env, "RFENV_APP_DIR=/srv/env") {
		t.Errorf("Env = %q, want RFENV_APP_DIR=/srv/env", cfg.Env)
	}
	if body := serve(t, tag, shim.DefaultPort, "/health"); !strings.Contains(body, `"ok"`) {
		t.Errorf("/health = %s", body)
	}
}

func TestBuildFunctionDefaultDockerfile(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "fn-default")
	dir := envDir(t, map[string]string{
		"env.py":           functionEnvPy,
		"requirements.txt": "# nothing to install: PyPI is unreachable here\n",
		".dockerignore":    "secret.txt\n",
		"secret.txt":       "do not ship\n",
		"data/input.json":  "{}\n",
	})
	before := listDir(t, dir)
	res, progress := build(t, docker, im, Options{Dir: dir, Tag: tag, BaseImage: dockertest.BaseImage()})
	checkFunctionImage(t, docker, res, tag)
	if after := listDir(t, dir); !slices.Equal(before, after) {
		t.Errorf("the build changed the environment directory: %v -> %v", before, after)
	}
	if !strings.Contains(progress, "RUN pip install --no-cache-dir -r requirements.txt") {
		t.Errorf("progress has no pip step:\n%s", progress)
	}
	got := runPython(t, tag, "import os; print(os.getcwd(), os.environ.get('PYTHONUNBUFFERED'), *[os.path.exists('/app/'+f) for f in ('env.py', 'requirements.txt', 'data/input.json', 'secret.txt', 'Dockerfile')])")
	if got != "/app 1 True True True False False" {
		t.Errorf("in the image: %q", got)
	}
	if body := serve(t, tag, shim.DefaultPort, "/health"); !strings.Contains(body, `"ok"`) {
		t.Errorf("/health = %s", body)
	}
}

func TestBuildHTTPDefaultDockerfile(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "http-default")
	dir := envDir(t, map[string]string{"env.py": fastapiEnvPy})
	res, _ := build(t, docker, im, Options{Dir: dir, Tag: tag, BaseImage: dockertest.BaseImage()})
	if res.Kind != KindHTTP || res.Image != tag || res.BaseImage != "" || res.Port != 8000 {
		t.Errorf("result = %+v", res)
	}
	cfg := inspect(t, docker, tag).Config
	if cfg.Labels[LabelType] != "http" || cfg.Labels[LabelPort] != "8000" {
		t.Errorf("labels = %v", cfg.Labels)
	}
	if _, ok := cfg.Labels[LabelShimVersion]; ok {
		t.Errorf("an http image has the shim label: %v", cfg.Labels)
	}
	if want := []string{"python3", "-m", "uvicorn", "env:app", "--host", "0.0.0.0", "--port", "8000"}; !slices.Equal(cfg.Cmd, want) {
		t.Errorf("Cmd = %q, want %q", cfg.Cmd, want)
	}
	if _, err := docker.ImageInspect(context.Background(), tag+"-base"); err == nil {
		t.Errorf("%s-base exists for an http build with the default Dockerfile", tag)
	}
	if body := serve(t, tag, 8000, "/"); !strings.Contains(body, "rfenv-build-test") {
		t.Errorf("GET / = %s", body)
	}
}

func TestBuildHTTPUserDockerfile(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "http-user")
	dir := envDir(t, map[string]string{
		"env.py": fastapiEnvPy,
		"Dockerfile": "FROM " + dockertest.BaseImage() + "\nWORKDIR /app\nCOPY env.py .\nEXPOSE 9000\n" +
			`CMD ["python3", "-m", "uvicorn", "env:app", "--host", "0.0.0.0", "--port", "9000"]` + "\n",
	})
	res, _ := build(t, docker, im, Options{Dir: dir, Tag: tag})
	if res.Kind != KindHTTP || res.Image != tag || res.BaseImage != tag+"-base" || res.Port != 9000 {
		t.Errorf("result = %+v", res)
	}
	cfg := inspect(t, docker, tag).Config
	if cfg.Labels[LabelType] != "http" || cfg.Labels[LabelPort] != "9000" {
		t.Errorf("labels = %v", cfg.Labels)
	}
	if cfg.Cmd[len(cfg.Cmd)-1] != "9000" {
		t.Errorf("the user's CMD was not kept: %q", cfg.Cmd)
	}
	if body := serve(t, tag, 9000, "/"); !strings.Contains(body, "rfenv-build-test") {
		t.Errorf("GET / = %s", body)
	}
}

func TestBuildTypeOverride(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "override")
	// A FastAPI app, built as a function environment because the caller says so.
	dir := envDir(t, map[string]string{"env.py": fastapiEnvPy})
	res, _ := build(t, docker, im, Options{Dir: dir, Tag: tag, Type: KindFunction, BaseImage: dockertest.BaseImage(), ProgressMode: "quiet"})
	checkFunctionImage(t, docker, res, tag)
}

func TestBuildFailingStep(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "fail")
	dir := envDir(t, map[string]string{
		"env.py": functionEnvPy,
		"Dockerfile": "FROM " + dockertest.BaseImage() + "\nCOPY env.py /app/\n" +
			"RUN echo first-marker-line && for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do echo filler $i; done && echo last-marker-line >&2 && exit 3\n",
	})
	var progress bytes.Buffer
	res, err := Build(context.Background(), docker, Options{Dir: dir, Tag: tag, Progress: &progress, ProgressMode: "quiet"})
	im.add(res)
	if err == nil {
		t.Fatal("Build succeeded")
	}
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("error is not a StepError: %v", err)
	}
	msg := err.Error()
	t.Logf("error:\n%s", msg)
	for _, want := range []string{"RUN echo first-marker-line", "exit code: 3", "last-marker-line", "filler 25", tag + "-base"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if strings.Contains(msg, "first-marker-line\n") || strings.Contains(msg, "filler 1\n") {
		t.Errorf("error has more than the last lines")
	}
	if progress.Len() != 0 {
		t.Errorf("quiet mode wrote progress: %q", progress.String())
	}
}

func TestBuildBadDockerfile(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "bad")
	dir := envDir(t, map[string]string{"env.py": functionEnvPy, "Dockerfile": "FROM " + dockertest.BaseImage() + "\nNOPE something\n"})
	res, err := Build(context.Background(), docker, Options{Dir: dir, Tag: tag})
	im.add(res)
	if err == nil || !strings.Contains(err.Error(), "NOPE") && !strings.Contains(strings.ToLower(err.Error()), "unknown instruction") {
		t.Fatalf("Build = %v, want an error about the unknown instruction", err)
	}
	t.Logf("error: %v", err)
}

// TestBuildCancel: cancelling the context stops a running step and Build returns promptly.
func TestBuildCancel(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "cancel")
	dir := envDir(t, map[string]string{"env.py": functionEnvPy, "Dockerfile": "FROM " + dockertest.BaseImage() + "\nRUN echo started-sleeping && sleep 120\n"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pw := &signalWriter{marker: "started-sleeping", seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		res, err := Build(ctx, docker, Options{Dir: dir, Tag: tag, Progress: pw, ProgressMode: "plain", NoCache: true})
		im.add(res)
		done <- err
	}()
	select {
	case <-pw.seen:
	case err := <-done:
		t.Fatalf("Build returned before the step ran: %v", err)
	case <-time.After(60 * time.Second):
		pw.mu.Lock()
		defer pw.mu.Unlock()
		t.Fatalf("the RUN step never started; progress:\n%s", pw.buf.String())
	}
	t0 := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Build = %v, want context.Canceled", err)
		}
		t.Logf("returned %v after cancel: %v", time.Since(t0), err)
	case <-time.After(20 * time.Second):
		t.Fatal("Build did not return within 20s of cancel")
	}
}

type signalWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
	once   sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Count(w.buf.String(), w.marker) >= 2 { // the step's name, then its output
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func TestBuildMissingBaseImage(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "nobase")
	dir := envDir(t, map[string]string{"env.py": functionEnvPy})
	res, err := Build(context.Background(), docker, Options{Dir: dir, Tag: tag, BaseImage: "rfenv-no-such-image:never"})
	im.add(res)
	var se *StepError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "docker pull docker.io/library/rfenv-no-such-image:never") {
		t.Fatalf("Build = %v, want a StepError telling to pull the image", err)
	}
	t.Logf("error: %v", err)
}

func TestBuildNoEnvPy(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	dir := envDir(t, map[string]string{"Dockerfile": "FROM scratch\n"})
	_, err := Build(context.Background(), docker, Options{Dir: dir, Tag: "rfenv-buildtest-never:v1"})
	if !errors.Is(err, ErrNoEnvPy) {
		t.Fatalf("Build = %v, want ErrNoEnvPy", err)
	}
	if !strings.Contains(err.Error(), "rfenv init "+dir) {
		t.Errorf("message: %v", err)
	}
}

func TestBuildBadOptions(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	dir := envDir(t, map[string]string{"env.py": functionEnvPy})
	for _, opts := range []Options{
		{Dir: dir, Tag: ""},
		{Dir: dir, Tag: "Upper:case"},
		{Dir: dir, Tag: "x@sha256:" + strings.Repeat("a", 64)},
		{Dir: dir, Tag: "ok:v1", Type: "grpc"},
		{Dir: dir, Tag: "ok:v1", ProgressMode: "fancy"},
		{Dir: dir, Tag: "ok:v1", ProgressMode: "tty", Progress: io.Discard},
		{Dir: dir, Tag: "ok:v1", BaseImage: "python:3.12\nRUN rm -rf /"},
	} {
		if _, err := Build(context.Background(), docker, opts); !errors.Is(err, errs.Usage) {
			t.Errorf("Build(%+v) = %v, want a usage error", opts, err)
		} else {
			t.Logf("%v", err)
		}
	}
}

// TestBuildCacheAfterEdit: editing env.py reuses the requirements layer.
func TestBuildCacheAfterEdit(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "cache")
	dir := envDir(t, map[string]string{"env.py": functionEnvPy, "requirements.txt": "# none\n"})
	opts := Options{Dir: dir, Tag: tag, BaseImage: dockertest.BaseImage()}
	build(t, docker, im, opts)
	// Unique contents: BuildKit's cache is keyed on content, so a previous run's identical edit
	// would make the COPY step cached.
	edited := fmt.Sprintf("%s\n\ndef sub(a, b):\n    return a - b\n\n\nRUN_ID = %q\n", functionEnvPy, tag)
	if err := os.WriteFile(filepath.Join(dir, "env.py"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	_, progress := build(t, docker, im, opts)
	if !stepCached(progress, "RUN pip install") {
		t.Errorf("the pip step was not cached after editing env.py:\n%s", progress)
	}
	if stepCached(progress, "COPY . /app") {
		t.Errorf("the COPY step was cached although env.py changed:\n%s", progress)
	}
	if got := runPython(t, tag, "import sys; sys.path.insert(0, '/app'); import env; print(env.sub(5, 3))"); got != "2" {
		t.Errorf("the edited env.py is not in the image: %q", got)
	}
}

// stepCached finds the step in plain progress output ("#7 [3/4] RUN pip ...") and reports whether it
// was marked "#7 CACHED".
func stepCached(progress, step string) bool {
	re := regexp.MustCompile(`(?m)^#(\d+) \[[^\]]*\] ` + regexp.QuoteMeta(step))
	for _, m := range re.FindAllStringSubmatch(progress, -1) {
		if regexp.MustCompile(`(?m)^#` + m[1] + ` CACHED$`).MatchString(progress) {
			return true
		}
	}
	return false
}

// TestBuildSharedKeyRegression: two directories whose Dockerfile and env.py have the same size and
// mtime but different contents each build their own.
func TestBuildSharedKeyRegression(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	var tags []string
	for _, word := range []string{"alpha", "bravo"} {
		tag, im := uniqueTag(t, docker, "sharedkey-"+word)
		dir := envDir(t, map[string]string{
			"env.py":     "WORD = '" + word + "'\n",
			"Dockerfile": "FROM " + dockertest.BaseImage() + "\nRUN echo " + word + " > /marker\nCOPY env.py /app/env.py\n",
		})
		for _, f := range []string{"env.py", "Dockerfile"} {
			if err := os.Chtimes(filepath.Join(dir, f), mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
		build(t, docker, im, Options{Dir: dir, Tag: tag})
		tags = append(tags, tag)
	}
	for i, word := range []string{"alpha", "bravo"} {
		got := runPython(t, tags[i], "print(open('/marker').read().strip(), open('/app/env.py').read().strip())")
		if want := word + " WORD = '" + word + "'"; got != want {
			t.Errorf("%s: got %q, want %q", tags[i], got, want)
		}
	}
}

// TestBuildRawJSON: rawjson mode writes one JSON status per line.
func TestBuildRawJSON(t *testing.T) {
	t.Parallel()
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "rawjson")
	dir := envDir(t, map[string]string{"env.py": functionEnvPy})
	var out bytes.Buffer
	build(t, docker, im, Options{Dir: dir, Tag: tag, BaseImage: dockertest.BaseImage(), Progress: &out, ProgressMode: "rawjson"})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "{") || !strings.Contains(out.String(), `"vertexes"`) {
		t.Errorf("rawjson output:\n%s", out.String())
	}
}

func listDir(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// BenchmarkBuild measures a function environment with the default Dockerfile and a requirements.txt:
// a cold build (NoCache), an unchanged rebuild, and a rebuild after editing env.py.
func BenchmarkBuild(b *testing.B) {
	docker := newDocker(b)
	tag, im := uniqueTag(b, docker, "bench")
	dir := envDir(b, map[string]string{"env.py": functionEnvPy, "requirements.txt": "# none\n"})
	opts := Options{Dir: dir, Tag: tag, BaseImage: dockertest.BaseImage(), Progress: io.Discard, ProgressMode: "quiet"}
	run := func(b *testing.B, o Options, before func(i int)) {
		var total time.Duration
		for i := 0; b.Loop(); i++ {
			if before != nil {
				before(i)
			}
			res, err := Build(context.Background(), docker, o)
			if err != nil {
				b.Fatal(err)
			}
			im.add(res)
			total += res.Duration
		}
		b.ReportMetric(total.Seconds()/float64(b.N), "s/op")
	}
	b.Run("cold", func(b *testing.B) {
		o := opts
		o.NoCache = true
		run(b, o, nil)
	})
	b.Run("unchanged", func(b *testing.B) {
		if _, err := Build(context.Background(), docker, opts); err != nil {
			b.Fatal(err)
		}
		run(b, opts, nil)
	})
	b.Run("edited", func(b *testing.B) {
		run(b, opts, func(i int) {
			src := fmt.Sprintf("%s\n\ndef version():\n    return %d\n", functionEnvPy, time.Now().UnixNano()+int64(i))
			if err := os.WriteFile(filepath.Join(dir, "env.py"), []byte(src), 0o644); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// TestNothingBuilt: the errors a build is retried on are those BuildKit gives before any step ran
// (seen on a loaded CI machine), and no others.
func TestNothingBuilt(t *testing.T) {
	for msg, want := range map[string]bool{
		`failed to solve: no active session for 3jk2: context deadline exceeded`: true,
		`failed to get status: rpc error: code = Unavailable desc = rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: context deadline exceeded"`: true,
		`process "/bin/sh -c pip install -r requirements.txt" did not complete successfully: exit code: 1`:                                                                                     false,
		`rpc error: code = Unavailable desc = error reading from server: EOF`:                                                                                                                  false,
	} {
		if got := nothingBuilt(errors.New(msg)); got != want {
			t.Errorf("nothingBuilt(%q) = %v, want %v", msg, got, want)
		}
	}
}
