package kube_test

// End-to-end tests and benchmarks of the Kubernetes backend on a real single-node cluster
// (pkg/testutil/kubecluster). They run only with RFENV_TEST_K8S=1 (`make test-k8s`): the cluster
// needs root, a few minutes to build the first time, and about 1 GB of memory.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedapps "k8s.io/client-go/kubernetes/typed/apps/v1"
	typedcore "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/rfenv/rfenv/pkg/batch"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/kube"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
	"github.com/rfenv/rfenv/pkg/testutil/kubecluster"
)

var cluster *kubecluster.Cluster

const namespace = "default"

var hostSpec = "k8s://" + kubecluster.ContextName + "/" + namespace

func TestMain(m *testing.M) {
	if os.Getenv("RFENV_TEST_K8S") != "1" {
		os.Exit(m.Run()) // the tests skip themselves
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	start := time.Now()
	c, err := kubecluster.Start(ctx, kubecluster.Options{Log: os.Stderr})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubecluster:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "kubecluster: node ready in %s\n", time.Since(start).Round(time.Millisecond))
	cluster = c
	os.Setenv("KUBECONFIG", c.Kubeconfig)
	os.Unsetenv(kube.TransportEnv)
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "kubecluster: teardown:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func requireCluster(t testing.TB) {
	t.Helper()
	if cluster == nil {
		t.Skip("needs a Kubernetes cluster: run `make test-k8s` (RFENV_TEST_K8S=1, root)")
	}
}

var (
	imgMu  sync.Mutex
	loaded = map[string]string{}
)

// image builds a fixture with Docker and loads it into the cluster's containerd, once.
func image(t testing.TB, name string) string {
	t.Helper()
	requireCluster(t)
	imgMu.Lock()
	defer imgMu.Unlock()
	if tag, ok := loaded[name]; ok {
		return tag
	}
	tag := e2e.Image(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := cluster.LoadImage(ctx, tag); err != nil {
		t.Fatal(err)
	}
	loaded[name] = tag
	return tag
}

func newClient(t testing.TB) *rfenv.Client {
	t.Helper()
	c, err := rfenv.New(rfenv.WithStateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c.DownAll(ctx, rfenv.DownOptions{})
		c.Close()
	})
	return c
}

func up(t testing.TB, c *rfenv.Client, name string, replicas int, mod ...func(*rfenv.UpOptions)) *rfenv.Env {
	t.Helper()
	o := rfenv.UpOptions{Name: name, Replicas: replicas, Hosts: []string{hostSpec}, ReadyTimeout: 3 * time.Minute}
	for _, f := range mod {
		f(&o)
	}
	env, err := c.Up(context.Background(), image(t, "actor"), rfenv.WithUpOptions(o))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Release)
	return env
}

// clients are typed clients of the test cluster, for checking what rfenv did.
type clients struct {
	Core typedcore.CoreV1Interface
	Apps typedapps.AppsV1Interface
}

func conn(t testing.TB) clients {
	t.Helper()
	core, err := cluster.Core()
	if err != nil {
		t.Fatal(err)
	}
	apps, err := cluster.Apps()
	if err != nil {
		t.Fatal(err)
	}
	return clients{Core: core, Apps: apps}
}

// managed lists what rfenv left in the namespace for a state directory.
func (k clients) ListManaged(ctx context.Context, stateID string) ([]string, error) {
	sel := metav1.ListOptions{LabelSelector: kube.ManagedSelector(stateID)}
	var out []string
	deps, err := k.Apps.Deployments(namespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, d := range deps.Items {
		out = append(out, "Deployment/"+d.Name)
	}
	rss, err := k.Apps.ReplicaSets(namespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, d := range rss.Items {
		out = append(out, "ReplicaSet/"+d.Name)
	}
	secs, err := k.Core.Secrets(namespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, d := range secs.Items {
		out = append(out, "Secret/"+d.Name)
	}
	pods, err := k.Core.Pods(namespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, d := range pods.Items {
		out = append(out, "Pod/"+d.Name)
	}
	return out, nil
}

func stateID(c *rfenv.Client) string { return c.Store().ID() }

// replicasSeen calls `replica` (the pod's name) n times and counts the answers per pod.
func replicasSeen(t testing.TB, env *rfenv.Env, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		var r string
		if err := env.CallInto(context.Background(), "replica", nil, &r); err != nil {
			t.Fatal(err)
		}
		seen[r]++
	}
	return seen
}

func TestE2EK8sUpCallsBalancedSecretsHidden(t *testing.T) {
	requireCluster(t)
	c := newClient(t)
	const secret = "s3cr3t-value-never-in-the-pod-spec"
	env := up(t, c, e2e.Name("k8s-balance"), 3, func(o *rfenv.UpOptions) {
		o.Env = map[string]string{"TEST_SECRET": secret}
		o.Secrets = map[string]string{"OTHER_SECRET": secret + "-2"}
		o.Balancer = "round_robin"
	})
	rec := env.Record()
	if len(rec.Instances) != 3 {
		t.Fatalf("%d instances recorded, want 3", len(rec.Instances))
	}
	for _, in := range rec.Instances {
		if in.Host != hostSpec || !strings.HasPrefix(in.ContainerName, e2e.Name("k8s-balance")+"-") || in.ContainerID != "" {
			t.Errorf("instance %+v: want host %s and a pod name", in, hostSpec)
		}
	}
	// Balanced over all three pods (through the API server: port-forward streams).
	seen := replicasSeen(t, env, 60)
	if len(seen) != 3 {
		t.Fatalf("calls reached %d pods, want 3: %v", len(seen), seen)
	}
	for pod, n := range seen {
		if n != 20 {
			t.Errorf("round robin gave pod %s %d of 60 calls, want 20", pod, n)
		}
	}
	var has bool
	if err := env.CallInto(context.Background(), "has_secret", map[string]string{"name": "TEST_SECRET"}, &has); err != nil || !has {
		t.Fatalf("TEST_SECRET did not reach the pod: %v %v", has, err)
	}
	// Methods and stats through the API server.
	ms, err := env.Methods(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range ms {
		names[m.Name] = true
	}
	if !names["add"] || !names["replica"] || names["_private"] {
		t.Errorf("methods: %v", names)
	}
	st := env.Stats(context.Background())
	if st.HealthyInstances != 3 || st.TotalInstances != 3 {
		t.Errorf("stats: %d/%d healthy", st.HealthyInstances, st.TotalInstances)
	}
	// The Secret's values (and the token) appear nowhere in the Deployment or the pods.
	k := conn(t)
	ctx := context.Background()
	dep, err := k.Apps.Deployments(namespace).Get(ctx, e2e.Name("k8s-balance"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := k.Core.Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: kube.Selector(e2e.Name("k8s-balance"), stateID(c))})
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := json.Marshal([]any{dep, pods})
	for _, v := range []string{secret, rec.Token} {
		if bytes.Contains(blob, []byte(v)) {
			t.Errorf("a secret value appears in the Deployment or pod spec")
		}
	}
	ctr := dep.Spec.Template.Spec.Containers[0]
	if len(ctr.EnvFrom) != 1 || ctr.EnvFrom[0].SecretRef == nil || ctr.EnvFrom[0].SecretRef.Name != kube.SecretName(e2e.Name("k8s-balance")) {
		t.Errorf("the pod spec does not take its variables from the Secret: %+v", ctr.EnvFrom)
	}
	if ctr.ReadinessProbe == nil || ctr.ReadinessProbe.HTTPGet == nil || ctr.ReadinessProbe.HTTPGet.Path != "/health" {
		t.Errorf("no readiness probe on /health: %+v", ctr.ReadinessProbe)
	}
	if ctr.ImagePullPolicy != "IfNotPresent" {
		t.Errorf("pull policy %s, want IfNotPresent", ctr.ImagePullPolicy)
	}
	svcs, _ := k.Core.Services(namespace).List(ctx, metav1.ListOptions{LabelSelector: kube.ManagedSelector(stateID(c))})
	if svcs != nil && len(svcs.Items) > 0 {
		t.Errorf("up made a Service")
	}
	// A second process (Get) lists the pods itself and reaches all of them.
	env2, err := c.Get(ctx, e2e.Name("k8s-balance"))
	if err != nil {
		t.Fatal(err)
	}
	defer env2.Release()
	if got := replicasSeen(t, env2, 30); len(got) != 3 {
		t.Errorf("Get's env reached %d pods, want 3", len(got))
	}
}

func TestE2EK8sDeletePodMidBatch(t *testing.T) {
	requireCluster(t)
	c := newClient(t)
	env := up(t, c, e2e.Name("k8s-batch"), 3)
	k := conn(t)
	victim := env.Record().Instances[1].ContainerName
	const n = 2000
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "{\"a\": %d, \"b\": 1}\n", i)
	}
	var deleted atomic.Bool
	var delErr error
	completed := &countingCaller{Caller: env.Pool()}
	var afterDelete int64 = -1
	opts := batch.Options{Method: "add", Concurrency: 16, Timeout: 20 * time.Second,
		Progress: func(done, failed int) {
			if done >= n/4 && deleted.CompareAndSwap(false, true) {
				// Synchronously (the batch's collector waits): the delete has been accepted before
				// the point recorded, so the calls started after it provably ran without the pod.
				delErr = k.Core.Pods(namespace).Delete(context.Background(), victim, metav1.DeleteOptions{})
				afterDelete = completed.n.Load()
			}
		}}
	var out bytes.Buffer
	start := time.Now()
	sum, err := batch.Run(context.Background(), completed, &in, &out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if delErr != nil || !deleted.Load() {
		t.Fatalf("the pod was not deleted: %v", delErr)
	}
	// A call with index i starts once i-Concurrency calls have completed.
	if first := int(afterDelete) + opts.Concurrency; first >= n-100 {
		t.Fatalf("the delete landed after call %d of %d: too late to show the batch going on", first, n)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != n || sum.Total != n {
		t.Fatalf("%d output lines (summary %d), want %d", len(lines), sum.Total, n)
	}
	for i, l := range lines {
		var line batch.Line
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatal(err)
		}
		if line.Error != nil {
			t.Errorf("line %d failed: %s: %s", i, line.Error.Kind, line.Error.Message)
			continue
		}
		if string(line.Result) != fmt.Sprint(i+1) {
			t.Errorf("line %d: result %s, want %d", i, line.Result, i+1)
		}
	}
	t.Logf("%d calls in %s with pod %s deleted at 25%%: %d failed", n, time.Since(start).Round(time.Millisecond), victim, sum.Failed)
	// The Deployment replaces the pod, and the same Env (no new up, no new Get) picks it up.
	e2e.Eventually(t, 2*time.Minute, "the replacement pod to join the pool", func() bool {
		st := env.Stats(context.Background())
		if st.HealthyInstances != 3 {
			return false
		}
		seen := replicasSeen(t, env, 30)
		_, old := seen[victim]
		return len(seen) == 3 && !old
	})
}

func TestE2EK8sScale(t *testing.T) {
	requireCluster(t)
	c := newClient(t)
	k := conn(t)
	ctx := context.Background()
	for _, n := range []int{3, 5, 2} {
		start := time.Now()
		env := up(t, c, e2e.Name("k8s-scale"), n)
		if got := len(env.Record().Instances); got != n {
			t.Fatalf("up --replicas %d recorded %d instances", n, got)
		}
		dep, err := k.Apps.Deployments(namespace).Get(ctx, e2e.Name("k8s-scale"), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *dep.Spec.Replicas != int32(n) {
			t.Fatalf("deployment has %d replicas, want %d", *dep.Spec.Replicas, n)
		}
		env2, err := c.Get(ctx, e2e.Name("k8s-scale"))
		if err != nil {
			t.Fatal(err)
		}
		seen := replicasSeen(t, env2, 10*n)
		env2.Release()
		if len(seen) != n {
			t.Fatalf("after scaling to %d, calls reached %d pods: %v", n, len(seen), seen)
		}
		t.Logf("scaled to %d in %s", n, time.Since(start).Round(time.Millisecond))
	}
	if got := len(mustDeployments(t, k)); got != 1 {
		t.Errorf("%d deployments after scaling, want 1", got)
	}
}

func mustDeployments(t testing.TB, k clients) []string {
	t.Helper()
	list, err := k.Apps.Deployments(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "rfenv.managed=true"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range list.Items {
		out = append(out, d.Name)
	}
	return out
}

func TestE2EK8sImagePullFails(t *testing.T) {
	requireCluster(t)
	c := newClient(t)
	start := time.Now()
	_, err := c.Up(context.Background(), "127.0.0.1:1/rfenv-test-nonexistent:v1", rfenv.WithUpOptions(rfenv.UpOptions{
		Name: e2e.Name("k8s-badimage"), Replicas: 2, Hosts: []string{hostSpec}, ReadyTimeout: 2 * time.Minute,
	}))
	if err == nil {
		t.Fatal("up of an image that cannot be pulled succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "ErrImagePull") && !strings.Contains(msg, "ImagePullBackOff") {
		t.Errorf("the error does not name the pull failure: %v", err)
	}
	if !errors.Is(err, errs.NotFound) && !errors.Is(err, errs.Infra) {
		t.Errorf("error kind %v, want not found or infra", errs.KindOf(err))
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("up took %s to fail: it should fail fast", took)
	}
	t.Logf("failed in %s: %v", time.Since(start).Round(time.Millisecond), err)
	// Nothing is left behind, in the cluster or the state file.
	k := conn(t)
	e2e.Eventually(t, time.Minute, "the failed environment's pods to be gone", func() bool {
		items, err := k.ListManaged(context.Background(), stateID(c))
		return err == nil && len(items) == 0
	})
	if _, err := c.Get(context.Background(), e2e.Name("k8s-badimage")); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("the failed environment is still in the state file: %v", err)
	}
}

func TestE2EK8sCrashFailsFast(t *testing.T) {
	requireCluster(t)
	c := newClient(t)
	start := time.Now()
	_, err := c.Up(context.Background(), image(t, "badctor"), rfenv.WithUpOptions(rfenv.UpOptions{
		Name: e2e.Name("k8s-badctor"), Replicas: 1, Hosts: []string{hostSpec}, ReadyTimeout: 2 * time.Minute,
	}))
	if err == nil {
		t.Fatal("up of an environment whose constructor raises succeeded")
	}
	if time.Since(start) > time.Minute {
		t.Errorf("took %s to fail", time.Since(start))
	}
	t.Logf("failed in %s: %v", time.Since(start).Round(time.Millisecond), err)
}

func TestE2EK8sDownAndOrphans(t *testing.T) {
	requireCluster(t)
	c := newClient(t)
	k := conn(t)
	ctx := context.Background()
	up(t, c, e2e.Name("k8s-down"), 2)
	res, err := c.Down(ctx, []string{e2e.Name("k8s-down")}, rfenv.DownOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Removed != 2 || !res[0].Forgotten {
		t.Errorf("down: %+v", res)
	}
	if items, err := k.ListManaged(ctx, stateID(c)); err != nil || len(items) != 0 {
		t.Fatalf("left after down: %v %v", items, err)
	}
	rs, err := k.Apps.ReplicaSets(namespace).List(ctx, metav1.ListOptions{LabelSelector: kube.ManagedSelector(stateID(c))})
	if err != nil || len(rs.Items) != 0 {
		t.Fatalf("replica sets left after down: %v", err)
	}
	// An environment the state file lost is found by --orphans and removed.
	up(t, c, e2e.Name("k8s-orphan"), 1)
	if err := c.Store().Update(ctx, func(f *state.File) error {
		delete(f.Environments, e2e.Name("k8s-orphan"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	orphans, err := c.Prune(ctx, []string{hostSpec})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, o := range orphans {
		kinds[strings.Split(o.Name, "/")[0]] = true
	}
	if !kinds["Deployment"] || !kinds["Secret"] || !kinds["Pod"] {
		t.Errorf("orphans found: %+v", orphans)
	}
	if items, err := k.ListManaged(ctx, stateID(c)); err != nil || len(items) != 0 {
		t.Fatalf("left after down --orphans: %v %v", items, err)
	}
}

// TestE2EK8sCLI runs the command itself against the cluster: up, call, methods, stats, ls, logs, down.
func TestE2EK8sCLI(t *testing.T) {
	requireCluster(t)
	img := image(t, "actor")
	// As released: the lean front, which links no Kubernetes client and so hands every command on
	// this environment to rfenv-full beside it.
	binDir := t.TempDir()
	bin := filepath.Join(binDir, "rfenv")
	for _, b := range [][]string{{"-o", filepath.Join(binDir, "rfenv-full")}, {"-tags", "rfenvlean", "-o", bin}} {
		build := exec.Command("go", append(append([]string{"build"}, b...), ".")...)
		build.Dir = e2e.Root(t)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build rfenv %v: %v: %s", b, err, out)
		}
	}
	stateDir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--state-dir", stateDir}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("rfenv %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}
	defer exec.Command(bin, "--state-dir", stateDir, "down", "--all").Run()
	run("up", img, "--name", e2e.Name("k8s-cli"), "--replicas", "2", "--host", hostSpec, "-e", "TEST_SECRET=x")
	if out := strings.TrimSpace(run("call", e2e.Name("k8s-cli"), "add", "--arg", "a=40", "--arg", "b=2")); out != "42" {
		t.Errorf("call: %q", out)
	}
	// A whole `rfenv call` process: kubeconfig, one pod list, one port-forward upgrade, the call.
	var took []time.Duration
	for range 5 {
		t0 := time.Now()
		run("call", e2e.Name("k8s-cli"), "add", "--arg", "a=1")
		took = append(took, time.Since(t0))
	}
	t.Logf("rfenv call through the API server, whole process: %v", took)
	if out := run("methods", e2e.Name("k8s-cli")); !strings.Contains(out, "add") {
		t.Errorf("methods: %q", out)
	}
	if out := run("stats", e2e.Name("k8s-cli"), "--json"); !strings.Contains(out, `"healthy": true`) && !strings.Contains(out, `"healthy":true`) {
		t.Errorf("stats: %q", out)
	}
	if out := run("ls"); !strings.Contains(out, e2e.Name("k8s-cli")) || !strings.Contains(out, "2/2") && !strings.Contains(out, "\t2\t") {
		t.Logf("ls: %q", out)
	}
	if out := run("logs", e2e.Name("k8s-cli"), "--tail", "5"); !strings.Contains(out, "listening") {
		t.Errorf("logs: %q", out)
	}
	run("down", e2e.Name("k8s-cli"))
	if items, err := conn(t).ListManaged(context.Background(), state.StateID(stateDir)); err != nil || len(items) != 0 {
		t.Errorf("left after rfenv down: %v %v", items, err)
	}
}

// TestE2EK8sPush: `build --push` to a registry on 127.0.0.1 (Debian's docker-registry), then up on
// the cluster pulling from it (pull policy Always).
func TestE2EK8sPush(t *testing.T) {
	requireCluster(t)
	regBin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry is not installed (apt-get install docker-registry; make test-k8s does)")
	}
	src := image(t, "actor")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, fmt.Appendf(nil, "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\nlog:\n  level: warn\n", filepath.Join(dir, "data"), addr), 0o644)
	reg := exec.Command(regBin, "serve", cfg)
	var regLog bytes.Buffer
	reg.Stdout, reg.Stderr = &regLog, &regLog
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { reg.Process.Kill(); reg.Wait() }()
	e2e.Eventually(t, 10*time.Second, "the registry to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	ref := addr + "/rfenv-actor:pushed"
	if out, err := exec.Command("docker", "tag", src, ref).CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v: %s", err, out)
	}
	defer exec.Command("docker", "rmi", ref).Run()
	c := newClient(t)
	if err := c.Push(context.Background(), "localhost", ref, nil); err != nil {
		t.Fatalf("push: %v\n%s", err, regLog.String())
	}
	if err := cluster.AllowInsecureRegistry(addr); err != nil {
		t.Fatal(err)
	}
	env, err := c.Up(context.Background(), ref, rfenv.WithUpOptions(rfenv.UpOptions{
		Name: e2e.Name("k8s-pushed"), Replicas: 1, Hosts: []string{hostSpec}, PullPolicy: "Always", ReadyTimeout: 3 * time.Minute,
	}))
	if err != nil {
		t.Fatalf("up from the registry: %v", err)
	}
	defer env.Release()
	var sum int
	if err := env.CallInto(context.Background(), "add", map[string]int{"a": 1, "b": 2}, &sum); err != nil || sum != 3 {
		t.Fatalf("call: %d %v", sum, err)
	}
}

// countingCaller counts completed calls, to place an injected fault among them.
type countingCaller struct {
	batch.Caller
	n atomic.Int64
}

func (c *countingCaller) CallEncoded(ctx context.Context, method string, body []byte) (json.RawMessage, error) {
	res, err := c.Caller.CallEncoded(ctx, method, body)
	c.n.Add(1)
	return res, err
}
