//go:build linux

package dockerd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/gofrs/flock"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/rfenv/rfenv/pkg/testutil/netutil"
)

// Binary is the daemon Start runs (looked up in PATH).
const Binary = "dockerd"

// StartTimeout bounds how long one attempt to start the daemon may take.
const StartTimeout = 90 * time.Second

// Daemon is a running (or stopped) second Docker daemon.
type Daemon struct {
	// Socket is the path of the daemon's API socket; put it in an ssh:// host spec as the remote
	// socket (sshd.Server.Target(d.Socket)).
	Socket string
	// Host is unix://Socket, for a Docker client on this machine.
	Host string
	// Bridge is the name of the bridge its containers are attached to; Gateway its address, and
	// Subnet the containers' addresses.
	Bridge  string
	Gateway netip.Addr
	Subnet  netip.Prefix
	// StorageDriver is the graph driver the daemon runs with (overlay2 where the kernel allows it).
	StorageDriver string
	// Dir holds everything of the daemon's: data root, exec root, socket, configuration.
	Dir string
	// Docker is a client of this daemon (not of the machine's own).
	Docker *client.Client

	t         testing.TB
	namespace string // containerd namespace
	execRoot  string
	dataRoot  string
	pidFile   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *logBuffer
}

// Start runs a new Docker daemon with no images and no containers, and stops and removes it when the
// test ends. It fails the test with the daemon's log if the daemon does not start.
func Start(t testing.TB) *Daemon {
	t.Helper()
	require(t)
	cleanStale(t)

	base := baseDir()
	dir, err := os.MkdirTemp(base, fmt.Sprintf("rfd-%d-", os.Getpid()))
	if err != nil {
		t.Fatalf("dockerd: make a directory in %s: %v", base, err)
	}
	d := &Daemon{
		Dir:       dir,
		Socket:    filepath.Join(dir, "docker.sock"),
		t:         t,
		namespace: "rfenv-test-" + filepath.Base(dir),
		execRoot:  filepath.Join(dir, "x"),
		dataRoot:  filepath.Join(dir, "data"),
		pidFile:   filepath.Join(dir, "dockerd.pid"),
		log:       &logBuffer{},
	}
	d.Host = "unix://" + d.Socket
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dockerd %s log (last 60 lines):\n%s", d.Socket, d.log.tail(60))
		}
		d.Stop()
		if d.Docker != nil {
			d.Docker.Close()
		}
		removeDir(t, dir)
	})
	d.Bridge, d.Gateway, d.Subnet = addBridge(t, dir)

	cli, err := client.New(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("dockerd: client for %s: %v", d.Host, err)
	}
	d.Docker = cli

	var failures []string
	for _, driver := range storageDrivers() {
		err := d.start(driver)
		if err == nil {
			d.StorageDriver = driver
			return d
		}
		failures = append(failures, fmt.Sprintf("--- storage driver %s: %v; last log lines:\n%s", driver, err, d.log.tail(15)))
		d.Stop()
		// The next attempt starts from an empty data root.
		unmountBelow(d.dataRoot)
		if err := os.RemoveAll(d.dataRoot); err != nil {
			t.Fatalf("dockerd: clear %s: %v", d.dataRoot, err)
		}
	}
	t.Fatalf("dockerd: could not start a second Docker daemon (%s --bridge=%s --data-root=%s ...); "+
		"the tests of remote hosts need one:\n%s", Binary, d.Bridge, d.dataRoot, strings.Join(failures, "\n"))
	return nil
}

// storageDrivers are tried in order: overlay2 is what a kernel with overlayfs offers; the others are
// for machines (nested containers, some VMs) where it does not work.
func storageDrivers() []string {
	if v := os.Getenv("RFENV_TEST_DOCKERD_STORAGE_DRIVER"); v != "" {
		return []string{v}
	}
	return []string{"overlay2", "fuse-overlayfs", "vfs"}
}

func require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: starts a second Docker daemon (skipped by -short)")
	}
	if os.Geteuid() != 0 {
		t.Fatalf("dockerd: starting a second Docker daemon needs root (running as uid %d)", os.Geteuid())
	}
	for _, bin := range []string{Binary, "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("dockerd: %s is missing (%v): the tests of remote hosts start a second Docker daemon; install docker.io and iproute2", bin, err)
		}
	}
}

// baseDir is where daemon directories go: the temporary directory, unless its path is so long that
// the sockets below it would pass the 108-byte limit of a unix socket path.
func baseDir() string {
	if d := os.TempDir(); len(d) <= 24 {
		return d
	}
	return "/tmp"
}

// start runs dockerd with a storage driver and waits until its API answers.
func (d *Daemon) start(driver string) error {
	cfg := filepath.Join(d.Dir, "daemon.json")
	// An empty configuration of its own: /etc/docker/daemon.json belongs to the machine's daemon
	// (and its data-root setting would clash with the flag).
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", cfg, err)
	}
	d.log.reset()
	args := []string{
		"--config-file=" + cfg,
		"--data-root=" + d.dataRoot,
		"--exec-root=" + d.execRoot,
		"--pidfile=" + d.pidFile,
		"--host=" + d.Host,
		"--bridge=" + d.Bridge,
		"--iptables=false",
		"--ip-masq=false",
		"--ip-forward=false",
		"--storage-driver=" + driver,
		// Used only if the machine runs a system containerd that dockerd would share; otherwise
		// dockerd starts a containerd of its own under the exec root.
		"--containerd-namespace=" + d.namespace,
		"--containerd-plugins-namespace=" + d.namespace + "p",
	}
	cmd := exec.Command(Binary, args...)
	// If the test binary dies without its cleanup, dockerd shuts down (and stops its containerd).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("start %s: %w", Binary, err)
	}
	pw.Close()
	done := make(chan struct{})
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			d.log.write(line + "\n")
			if !signalled && strings.Contains(line, "API listen on "+d.Socket) {
				signalled = true
				close(listening)
			}
		}
		io.Copy(io.Discard, pr)
		pr.Close()
	}()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.mu.Unlock()

	timer := time.NewTimer(StartTimeout)
	defer timer.Stop()
	select {
	case <-listening:
	case <-done:
		return fmt.Errorf("dockerd exited (%v) before listening on %s", cmd.ProcessState, d.Socket)
	case <-timer.C:
		return fmt.Errorf("dockerd did not listen on %s within %s", d.Socket, StartTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := d.Docker.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("dockerd listens on %s but /_ping failed: %w", d.Socket, err)
	}
	return nil
}

// Running reports whether the daemon's process is alive.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Stop removes every container of the daemon, stops it (SIGTERM, then SIGKILL after 30 s) and kills
// a containerd or shim of its that is left. Calling it again does nothing.
func (d *Daemon) Stop() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
	default:
		// Removing the containers first makes the shutdown quick and leaves no mount behind.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if res, err := d.Docker.ContainerList(ctx, client.ContainerListOptions{All: true}); err == nil {
			for _, c := range res.Items {
				if _, err := d.Docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
					d.t.Logf("dockerd cleanup: remove container %s: %v", c.ID, err)
				}
			}
		}
		cancel()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			d.t.Logf("dockerd cleanup: dockerd did not stop within 30s of SIGTERM; killing it")
			_ = cmd.Process.Kill()
			<-done
		}
	}
	killLeftovers(d.t, d.Dir, d.namespace)
}

// Log is what the daemon has written so far.
func (d *Daemon) Log() string { return d.log.String() }

// LoadImage copies an image from the machine's own daemon into this one (docker save | docker load).
func (d *Daemon) LoadImage(t testing.TB, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	local, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("dockerd: client of the machine's daemon: %v", err)
	}
	defer local.Close()
	saved, err := local.ImageSave(ctx, []string{ref})
	if err != nil {
		t.Fatalf("dockerd: save %s from the machine's daemon: %v", ref, err)
	}
	defer saved.Close()
	loaded, err := d.Docker.ImageLoad(ctx, saved, client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatalf("dockerd: load %s into %s: %v", ref, d.Socket, err)
	}
	defer loaded.Close()
	dec := json.NewDecoder(loaded)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("dockerd: load %s into %s: %v", ref, d.Socket, err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			t.Fatalf("dockerd: load %s into %s: %s", ref, d.Socket, m.ErrorDetail.Message)
		}
		if m.Error != "" {
			t.Fatalf("dockerd: load %s into %s: %s", ref, d.Socket, m.Error)
		}
	}
	if !d.HasImage(t, ref) {
		t.Fatalf("dockerd: %s is not on %s after loading it", ref, d.Socket)
	}
}

// HasImage says whether the daemon has an image of that reference.
func (d *Daemon) HasImage(t testing.TB, ref string) bool {
	t.Helper()
	_, err := d.Docker.ImageInspect(context.Background(), ref)
	switch {
	case err == nil:
		return true
	case cerrdefs.IsNotFound(err):
		return false
	}
	t.Fatalf("dockerd: inspect image %s on %s: %v", ref, d.Socket, err)
	return false
}

// Containers lists the daemon's containers, running or not.
func (d *Daemon) Containers(t testing.TB) []container.Summary {
	t.Helper()
	res, err := d.Docker.ContainerList(context.Background(), client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatalf("dockerd: list containers on %s: %v", d.Socket, err)
	}
	return res.Items
}

// addBridge creates the daemon's bridge on a free /24 of 10.201.0.0/16 and records its name in dir
// (for the clean-up of a test binary that died). The lock keeps two test binaries from choosing the
// same subnet at once.
func addBridge(t testing.TB, dir string) (name string, gw netip.Addr, subnet netip.Prefix) {
	t.Helper()
	lock := flock.New(filepath.Join(baseDir(), "rfenv-test-dockerd.lock"))
	if err := lock.Lock(); err != nil {
		t.Fatalf("dockerd: lock %s: %v", lock.Path(), err)
	}
	defer lock.Unlock()
	subnet = freeSubnet(t)
	gw = subnet.Addr().Next()
	name = "rfbr" + randHex(t, 3)
	if err := os.WriteFile(filepath.Join(dir, "bridge"), []byte(name+"\n"), 0o600); err != nil {
		t.Fatalf("dockerd: %v", err)
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("dockerd: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("link", "add", name, "type", "bridge")
	run("addr", "add", netip.PrefixFrom(gw, subnet.Bits()).String(), "dev", name)
	run("link", "set", name, "up")
	return name, gw, subnet
}

// freeSubnet picks a /24 in 10.201.0.0/16 that overlaps no address or route on the machine.
func freeSubnet(t testing.TB) netip.Prefix {
	t.Helper()
	p, err := netutil.FreeSubnet(netip.MustParsePrefix("10.201.0.0/16"), 24)
	if err != nil {
		t.Fatalf("dockerd: %v", err)
	}
	return p
}

func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("dockerd: random: %v", err)
	}
	return hex.EncodeToString(b)
}

// removeDir removes a daemon directory and its bridge; the daemon must be stopped.
func removeDir(t testing.TB, dir string) {
	unmountBelow(dir)
	bridge := ""
	if b, err := os.ReadFile(filepath.Join(dir, "bridge")); err == nil {
		bridge = strings.TrimSpace(string(b))
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Logf("dockerd cleanup: remove %s: %v", dir, err)
	}
	if bridge != "" {
		if _, err := net.InterfaceByName(bridge); err == nil {
			if out, err := exec.Command("ip", "link", "del", bridge).CombinedOutput(); err != nil {
				t.Logf("dockerd cleanup: ip link del %s: %v: %s", bridge, err, out)
			}
		}
	}
}

// unmountBelow detaches every mount at or below dir, deepest first.
func unmountBelow(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := unescapeMount(f[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		_ = unix.Unmount(p, unix.MNT_DETACH)
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// killLeftovers kills, by pid, the processes that belong to the daemon in dir and outlived it: its
// containerd and shims (a graceful dockerd shutdown leaves none).
func killLeftovers(t testing.TB, dir, namespace string) {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		name := filepath.Base(args[0])
		if !strings.HasPrefix(name, "containerd") && name != Binary {
			continue
		}
		ours := false
		for i, a := range args {
			if strings.Contains(a, dir+"/") || (a == "-namespace" && i+1 < len(args) && strings.HasPrefix(args[i+1], namespace)) {
				ours = true
				break
			}
		}
		if ours {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		t.Logf("dockerd cleanup: killing leftover process %d", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range pids {
		waitExit(pid, 10*time.Second)
	}
}

// waitExit waits until process pid (not necessarily our child) has exited, at most timeout.
func waitExit(pid int, timeout time.Duration) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, int(timeout/time.Millisecond)); err != unix.EINTR {
			return
		}
	}
}

var (
	staleOnce sync.Once
	staleName = regexp.MustCompile(`^rfd-(\d+)-`)
)

// cleanStale removes the daemons, directories and bridges of test binaries that are gone.
func cleanStale(t testing.TB) {
	staleOnce.Do(func() {
		base := baseDir()
		entries, err := os.ReadDir(base)
		if err != nil {
			return
		}
		for _, e := range entries {
			m := staleName.FindStringSubmatch(e.Name())
			if m == nil || !e.IsDir() {
				continue
			}
			pid, _ := strconv.Atoi(m[1])
			if pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
				continue
			}
			dir := filepath.Join(base, e.Name())
			t.Logf("dockerd: removing the leftovers of dead test process %d: %s", pid, dir)
			killLeftovers(t, dir, "rfenv-test-"+e.Name())
			removeDir(t, dir)
		}
	})
}

// logBuffer holds the daemon's output.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) write(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 8<<20 {
		l.b.Reset() // a runaway log: keep memory bounded
	}
	l.b.WriteString(s)
}

func (l *logBuffer) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
