// Package kubecluster brings up a real single-node Kubernetes cluster on this machine for rfenv's
// Kubernetes tests, from Go modules and Debian packages only: upstream Kubernetes v1.34 built from the
// Go module proxy (hack/k8s, a module of its own), etcd and the CNI plugins from Debian, and a private
// containerd (its own root, state and socket) whose pause image is a static Go binary packed here.
// Test images are loaded with `docker save | ctr -n k8s.io images import`.
//
// Stop tears everything down and puts the machine back as it was: kernel settings the kubelet changes
// are restored, and the iptables chains, cgroups, network namespaces, links, mounts and directories the
// cluster created are removed. Only one cluster runs on a machine at a time (a lock file serialises
// them), because its links and subnets have fixed names.
//
// Never used by production code.
package kubecluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedapps "k8s.io/client-go/kubernetes/typed/apps/v1"
	typedcore "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	nodeName    = "rfenv-node"
	nodeIPStr   = "10.217.255.254" // on a dummy link the cluster creates; apiserver reaches the kubelet here
	nodeLink    = "rfk8snode0"     // an empty bridge: this kernel has no dummy links
	bridgeLink  = "rfk8sbr0"
	podSubnet   = "10.217.0.0/24"
	serviceCIDR = "10.218.0.0/24"
	serviceIP   = "10.218.0.1"
	cniNetwork  = "rfenv-k8s"
	// ContextName is the kubeconfig context of the cluster.
	ContextName = "rfenv-test"
	// PauseImage is the sandbox image loaded into containerd.
	PauseImage = "rfenv.local/pause:1"
	lockPath   = "/run/rfenv-kubecluster.lock"
)

// Options configure a cluster.
type Options struct {
	// Log receives progress and the components' failures (default: discard).
	Log io.Writer
}

// Cluster is a running cluster.
type Cluster struct {
	Dir        string // runtime directory (removed by Stop)
	Kubeconfig string // path of an admin kubeconfig (context ContextName)
	Server     string // https://127.0.0.1:PORT
	NodeIP     string
	CtrSocket  string

	bins    Binaries
	log     io.Writer
	etcdDir string
	procs   []*proc // in start order
	before  snapshot
	lock    *os.File
	core    typedcore.CoreV1Interface
	stopped bool
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start brings up a cluster and waits until its node is Ready and the default namespace's service
// account exists. On failure everything started so far is torn down.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("kubecluster needs root (containerd, the kubelet, network namespaces)")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, err
	}
	bins, err := EnsureBinaries(ctx, o.Log)
	if err != nil {
		lock.Close()
		return nil, err
	}
	base := "/var/lib/rfenv-k8s"
	if err := os.MkdirAll(base, 0o700); err != nil {
		lock.Close()
		return nil, err
	}
	dir, err := os.MkdirTemp(base, "run-")
	if err != nil {
		lock.Close()
		return nil, err
	}
	c := &Cluster{Dir: dir, bins: bins, log: o.Log, lock: lock, NodeIP: nodeIPStr,
		etcdDir: filepath.Join("/dev/shm", "rfenv-k8s-etcd-"+filepath.Base(dir))}
	c.before = takeSnapshot()
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	// Leftovers of a run that was killed before its clean-up (fixed names, so they would clash).
	run("ip", "link", "del", bridgeLink)
	run("ip", "link", "del", nodeLink)
	if err := c.setupNodeLink(); err != nil {
		return nil, err
	}
	for _, d := range []string{"pki", "logs", "containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "certs.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	ca, admin, err := writePKI(filepath.Join(dir, "pki"), net.ParseIP(nodeIPStr))
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, apiPort, kubeletPort := ports[0], ports[1], ports[2], ports[3]
	c.Server = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	c.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig(c.Server, ContextName, ca, admin), 0o600); err != nil {
		return nil, err
	}

	if err := c.startContainerd(ctx); err != nil {
		return nil, err
	}
	if err := c.loadPauseImage(ctx); err != nil {
		return nil, err
	}
	pki := func(n string) string { return filepath.Join(dir, "pki", n) }
	if _, err := c.start("etcd", nil, bins.Etcd,
		"--name=default", "--data-dir="+c.etcdDir,
		"--listen-client-urls=http://127.0.0.1:"+strconv.Itoa(etcdPort),
		"--advertise-client-urls=http://127.0.0.1:"+strconv.Itoa(etcdPort),
		"--listen-peer-urls=http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--initial-advertise-peer-urls=http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--initial-cluster=default=http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--log-level=warn"); err != nil {
		return nil, err
	}
	if _, err := c.start("kube-apiserver", nil, bins.K8s, "kube-apiserver",
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(etcdPort),
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
		"--advertise-address="+nodeIPStr,
		"--service-cluster-ip-range="+serviceCIDR,
		"--tls-cert-file="+pki("apiserver.crt"), "--tls-private-key-file="+pki("apiserver.key"),
		"--client-ca-file="+pki("ca.crt"),
		"--kubelet-client-certificate="+pki("admin.crt"), "--kubelet-client-key="+pki("admin.key"),
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+pki("sa.key"),
		"--service-account-signing-key-file="+pki("sa.key"),
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=false", "--profiling=false", "--enable-priority-and-fairness=false",
		"--v=0"); err != nil {
		return nil, err
	}
	if err := c.waitAPIServer(ctx, ca, admin); err != nil {
		return nil, err
	}
	if _, err := c.start("kube-controller-manager", nil, bins.K8s, "kube-controller-manager",
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--service-account-private-key-file="+pki("sa.key"), "--root-ca-file="+pki("ca.crt"),
		"--use-service-account-credentials=false", "--controllers=*,-csrsigning,-csrapproving,-csrcleaner",
		"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10", "--v=0"); err != nil {
		return nil, err
	}
	if _, err := c.start("kube-scheduler", nil, bins.K8s, "kube-scheduler",
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--secure-port=0", "--v=0"); err != nil {
		return nil, err
	}
	if err := c.startKubelet(ctx, kubeletPort); err != nil {
		return nil, err
	}
	if err := c.waitNodeReady(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) setupNodeLink() error {
	if out, err := exec.Command("ip", "link", "add", nodeLink, "type", "bridge").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link add %s: %v: %s", nodeLink, err, out)
	}
	if out, err := exec.Command("ip", "addr", "add", nodeIPStr+"/32", "dev", nodeLink).CombinedOutput(); err != nil {
		return fmt.Errorf("ip addr add: %v: %s", err, out)
	}
	if out, err := exec.Command("ip", "link", "set", nodeLink, "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set up: %v: %s", err, out)
	}
	return nil
}

// start runs a component in its own process group with its output in DIR/logs/NAME.log.
func (c *Cluster) start(name string, env []string, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(c.Dir, "logs", name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	if bin == c.bins.K8s {
		cmd.Args[0] = "k8s" // the multi-call binary takes the component from its first argument
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p, nil
}

func (c *Cluster) proc(name string) *proc {
	for _, p := range c.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// LogTail is the end of a component's log, for failure messages.
func (c *Cluster) LogTail(name string, n int) string {
	data, _ := os.ReadFile(filepath.Join(c.Dir, "logs", name+".log"))
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *Cluster) exited(name string) error {
	p := c.proc(name)
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %s\n%s", name, p.cmd.ProcessState, c.LogTail(name, 30))
	default:
		return nil
	}
}

func (c *Cluster) startContainerd(ctx context.Context) error {
	cd := filepath.Join(c.Dir, "containerd")
	c.CtrSocket = filepath.Join(cd, "containerd.sock")
	cfg := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = %[6]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[7]q
    conf_dir = %[8]q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %[9]q
`, filepath.Join(cd, "root"), filepath.Join(cd, "state"), c.CtrSocket, c.CtrSocket+".ttrpc", PauseImage,
		c.bins.Runc, c.bins.CNIBin, filepath.Join(c.Dir, "cni", "net.d"), filepath.Join(c.Dir, "certs.d"))
	if err := os.WriteFile(filepath.Join(cd, "config.toml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
    {"type": "firewall"}
  ]
}
`, cniNetwork, bridgeLink, podSubnet, filepath.Join(c.Dir, "cni", "ipam"))
	if err := os.WriteFile(filepath.Join(c.Dir, "cni", "net.d", "10-rfenv.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	if _, err := c.start("containerd", []string{"PATH=" + c.bins.ContainerdPath}, c.bins.Containerd, "--config", filepath.Join(cd, "config.toml")); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if out, err := c.ctr(ctx, nil, "version"); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not answer: %v: %s\n%s", err, out, c.LogTail("containerd", 20))
		}
		if err := c.exited("containerd"); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) ctr(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.bins.Ctr, append([]string{"-a", c.CtrSocket, "-n", "k8s.io"}, args...)...)
	cmd.Stdin = stdin
	return cmd.CombinedOutput()
}

// LoadImage copies an image from the local Docker daemon into the cluster's containerd.
func (c *Cluster) LoadImage(ctx context.Context, ref string) error {
	save := exec.CommandContext(ctx, "docker", "save", ref)
	pr, pw := io.Pipe()
	save.Stdout = pw
	var serr bytes.Buffer
	save.Stderr = &serr
	if err := save.Start(); err != nil {
		return err
	}
	go func() { pw.CloseWithError(save.Wait()) }()
	out, err := c.ctr(ctx, pr, "images", "import", "--no-unpack=false", "-")
	pr.Close()
	if err != nil {
		return fmt.Errorf("load %s into the cluster: %v: %s %s", ref, err, out, serr.String())
	}
	return nil
}

// AllowInsecureRegistry lets the cluster pull from a plain-HTTP registry at hostport (e.g. a test
// registry on 127.0.0.1): containerd reads the hosts file at each pull.
func (c *Cluster) AllowInsecureRegistry(hostport string) error {
	d := filepath.Join(c.Dir, "certs.d", hostport)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d, "hosts.toml"), fmt.Appendf(nil, "server = \"http://%[1]s\"\n\n[host.\"http://%[1]s\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n", hostport), 0o644)
}

func (c *Cluster) startKubelet(ctx context.Context, port int) error {
	kd := filepath.Join(c.Dir, "kubelet")
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: %[2]d
readOnlyPort: 0
healthzPort: 0
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://%[3]s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %[4]q}
authorization: {mode: AlwaysAllow}
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%%", "imagefs.available": "1%%", "nodefs.inodesFree": "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: ""
serializeImagePulls: false
podLogsDir: %[5]q
protectKernelDefaults: false
nodeStatusUpdateFrequency: 2s
syncFrequency: 10s
fileCheckFrequency: 20s
shutdownGracePeriod: 0s
`, nodeIPStr, port, c.CtrSocket, filepath.Join(c.Dir, "pki", "ca.crt"), filepath.Join(c.Dir, "pod-logs"))
	if err := os.WriteFile(filepath.Join(kd, "config.yaml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	// The kubelet's PATH has no iptables, so it creates no KUBE-* chains; it still needs mount tools.
	toolDir := filepath.Join(kd, "path")
	os.MkdirAll(toolDir, 0o755)
	for _, t := range []string{"mount", "umount", "nsenter", "losetup", "du", "find", "nice", "ionice", "findmnt"} {
		if p, err := exec.LookPath(t); err == nil {
			os.Symlink(p, filepath.Join(toolDir, t))
		}
	}
	_, err := c.start("kubelet", []string{"PATH=" + toolDir}, c.bins.K8s, "kubelet",
		"--config="+filepath.Join(kd, "config.yaml"), "--kubeconfig="+c.Kubeconfig,
		"--hostname-override="+nodeName, "--node-ip="+nodeIPStr,
		"--root-dir="+filepath.Join(kd, "root"), "--cert-dir="+filepath.Join(kd, "pki"), "--v=0")
	return err
}

func (c *Cluster) waitAPIServer(ctx context.Context, ca, admin keyPair) error {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cert, err := tls.X509KeyPair(admin.certPEM(), admin.keyPEM())
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := hc.Get(c.Server + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		for _, n := range []string{"etcd", "kube-apiserver"} {
			if err := c.exited(n); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the API server was not ready after 90s\n%s", c.LogTail("kube-apiserver", 30))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Core is a client of the cluster's core API group.
func (c *Cluster) Core() (typedcore.CoreV1Interface, error) {
	if c.core != nil {
		return c.core, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	core, err := typedcore.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	c.core = core
	return core, nil
}

// Apps is a client of the cluster's apps API group.
func (c *Cluster) Apps() (typedapps.AppsV1Interface, error) { return c.apps() }

func (c *Cluster) apps() (typedapps.AppsV1Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return typedapps.NewForConfig(cfg)
}

func (c *Cluster) waitNodeReady(ctx context.Context) error {
	core, err := c.Core()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		ready, why := false, "not registered"
		if n, err := core.Nodes().Get(ctx, nodeName, metav1.GetOptions{}); err == nil {
			why = "no Ready condition"
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					ready = cond.Status == corev1.ConditionTrue
					why = cond.Reason + ": " + cond.Message
				}
			}
			tainted := false
			for _, t := range n.Spec.Taints {
				if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
					tainted = true
					why = "tainted " + t.Key
				}
			}
			ready = ready && !tainted
		}
		if ready {
			if _, err := core.ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err == nil {
				return nil
			}
			why = "no default service account yet"
		}
		for _, p := range c.procs {
			if err := c.exited(p.name); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node not ready after 120s (%s)\nkubelet:\n%s\ncontainerd:\n%s", why, c.LogTail("kubelet", 30), c.LogTail("containerd", 10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func run(name string, args ...string) error {
	return exec.Command(name, args...).Run()
}
