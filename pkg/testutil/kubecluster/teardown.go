package kubecluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sysctls the kubelet (or the CNI bridge) may change; Stop writes back what they were.
var sysctls = []string{
	"kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory", "vm/panic_on_oom",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward",
	"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
}

var iptTables = []string{"filter", "nat", "mangle"}

// snapshot is what existed before the cluster started.
type snapshot struct {
	sysctl  map[string]string
	netns   map[string]bool
	chains  map[string]bool // "table/chain"
	cgroups map[string]bool // top-level dirs under each controller
	dirs    map[string]bool
	// netnsMount: /run/netns was a mount point (`ip netns` and containerd bind it onto itself).
	netnsMount bool
}

var watchedDirs = []string{"/var/lib/cni", "/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/etc/cni", "/run/netns"}

func takeSnapshot() snapshot {
	s := snapshot{sysctl: map[string]string{}, netns: map[string]bool{}, chains: map[string]bool{}, cgroups: map[string]bool{}, dirs: map[string]bool{}}
	for _, k := range sysctls {
		if b, err := os.ReadFile("/proc/sys/" + k); err == nil {
			s.sysctl[k] = strings.TrimSpace(string(b))
		}
	}
	for _, n := range listNetns() {
		s.netns[n] = true
	}
	for _, ch := range listChains() {
		s.chains[ch] = true
	}
	for _, d := range cgroupTops() {
		s.cgroups[d] = true
	}
	for _, d := range watchedDirs {
		if _, err := os.Stat(d); err == nil {
			s.dirs[d] = true
		}
	}
	s.netnsMount = isMountPoint("/run/netns")
	return s
}

func listNetns() []string {
	ents, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func listChains() []string {
	var out []string
	for _, t := range iptTables {
		b, err := exec.Command("iptables", "-w", "-t", t, "-S").Output()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "-N "); ok {
				out = append(out, t+"/"+strings.TrimSpace(name))
			}
		}
	}
	return out
}

func cgroupTops() []string {
	var out []string
	ctrls, _ := os.ReadDir("/sys/fs/cgroup")
	for _, c := range ctrls {
		sub, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", c.Name()))
		for _, d := range sub {
			if d.IsDir() {
				out = append(out, filepath.Join("/sys/fs/cgroup", c.Name(), d.Name()))
			}
		}
	}
	return out
}

// Stop tears the cluster down and restores the machine. It is safe to call more than once.
func (c *Cluster) Stop() error {
	if c.stopped {
		return nil
	}
	c.stopped = true
	var errsOut []error
	note := func(err error) {
		if err != nil {
			errsOut = append(errsOut, err)
			fmt.Fprintf(c.log, "kubecluster: teardown: %v\n", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// 1. Delete every pod through the API while the kubelet runs, so it stops the sandboxes itself
	// (CNI DEL, network namespaces, mounts).
	if c.proc("kubelet") != nil && c.core != nil {
		c.deleteAllPods(ctx)
	}
	// 2. Components in reverse order: kubelet, scheduler, controller-manager, apiserver, then etcd.
	for _, n := range []string{"kubelet", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		c.stopProc(n, 10*time.Second)
	}
	// 3. Whatever containers are left, then containerd and the shims it started.
	if c.proc("containerd") != nil {
		if out, err := c.ctr(ctx, nil, "tasks", "ls", "-q"); err == nil {
			for _, id := range strings.Fields(string(out)) {
				c.ctr(ctx, nil, "tasks", "kill", "-s", "SIGKILL", id)
			}
			time.Sleep(500 * time.Millisecond)
			for _, id := range strings.Fields(string(out)) {
				c.ctr(ctx, nil, "tasks", "delete", "-f", id)
			}
		}
		c.stopProc("containerd", 10*time.Second)
	}
	note(c.killShims())
	// 4. Network: namespaces, links, iptables chains.
	for _, n := range listNetns() {
		if !c.before.netns[n] {
			if out, err := exec.Command("ip", "netns", "delete", n).CombinedOutput(); err != nil {
				note(fmt.Errorf("ip netns delete %s: %v: %s", n, err, out))
			}
		}
	}
	run("ip", "link", "del", bridgeLink)
	run("ip", "link", "del", nodeLink)
	note(c.removeChains())
	// 5. Mounts and directories.
	note(unmountUnder(c.Dir, c.etcdDir, "/run/netns", "/var/lib/kubelet"))
	if !c.before.netnsMount && isMountPoint("/run/netns") {
		if ents, _ := os.ReadDir("/run/netns"); len(ents) == 0 {
			note(syscall.Unmount("/run/netns", syscall.MNT_DETACH))
		}
	}
	note(removeCgroups(c.before.cgroups))
	for _, d := range watchedDirs {
		if !c.before.dirs[d] {
			if d == "/run/netns" {
				if ents, _ := os.ReadDir(d); len(ents) > 0 {
					continue // someone else's namespaces appeared meanwhile
				}
			}
			note(os.RemoveAll(d))
		}
	}
	if c.before.dirs["/var/lib/cni"] {
		files, _ := filepath.Glob("/var/lib/cni/results/" + cniNetwork + "-*")
		for _, f := range files {
			os.Remove(f)
		}
	}
	if c.before.dirs["/var/log/containers"] {
		ents, _ := os.ReadDir("/var/log/containers")
		for _, e := range ents {
			p := filepath.Join("/var/log/containers", e.Name())
			if t, err := os.Readlink(p); err == nil && strings.HasPrefix(t, c.Dir) {
				os.Remove(p)
			}
		}
	}
	note(os.RemoveAll(c.Dir))
	note(os.RemoveAll(c.etcdDir))
	if ents, err := os.ReadDir("/var/lib/rfenv-k8s"); err == nil && len(ents) == 0 {
		os.Remove("/var/lib/rfenv-k8s")
	}
	// 6. Kernel settings the kubelet changed.
	for k, v := range c.before.sysctl {
		if b, err := os.ReadFile("/proc/sys/" + k); err == nil && strings.TrimSpace(string(b)) != v {
			note(os.WriteFile("/proc/sys/"+k, []byte(v), 0o644))
		}
	}
	if c.lock != nil {
		c.lock.Close()
	}
	return errors.Join(errsOut...)
}

func (c *Cluster) deleteAllPods(ctx context.Context) {
	nss, err := c.core.Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	cfgDeps, _ := c.apps()
	for _, ns := range nss.Items {
		if cfgDeps != nil {
			cfgDeps.Deployments(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
			cfgDeps.ReplicaSets(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		}
		grace := int64(1)
		c.core.Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{})
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		pods, err := c.core.Pods("").List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) == 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The kubelet stops a deleted pod's sandbox right away; give it a moment to finish.
	time.Sleep(time.Second)
}

func (c *Cluster) stopProc(name string, grace time.Duration) {
	p := c.proc(name)
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// killShims ends containerd shims (and their containers) that this cluster's containerd started:
// processes whose command line names its socket or its state directory. Each is killed by its id.
func (c *Cluster) killShims() error {
	if c.CtrSocket == "" {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var killed []int
	for _, e := range ents {
		pid := 0
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cl := string(cmdline)
		if strings.Contains(cl, "containerd-shim") && strings.Contains(cl, c.CtrSocket) {
			syscall.Kill(pid, syscall.SIGKILL)
			killed = append(killed, pid)
		}
	}
	for _, pid := range killed {
		for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func (c *Cluster) removeChains() error {
	var errsOut []error
	for _, t := range iptTables {
		b, err := exec.Command("iptables", "-w", "-t", t, "-S").Output()
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		isNew := func(ch string) bool {
			return !c.before.chains[t+"/"+ch] && (strings.HasPrefix(ch, "CNI-") || strings.HasPrefix(ch, "KUBE-"))
		}
		var newChains []string
		for _, l := range lines {
			if ch, ok := strings.CutPrefix(l, "-N "); ok && isNew(strings.TrimSpace(ch)) {
				newChains = append(newChains, strings.TrimSpace(ch))
			}
		}
		if len(newChains) == 0 {
			continue
		}
		// Rules in any chain that jump to a new chain, then the new chains themselves.
		for _, l := range lines {
			if !strings.HasPrefix(l, "-A ") {
				continue
			}
			f := splitRule(l)
			for i := 0; i+1 < len(f); i++ {
				if (f[i] == "-j" || f[i] == "-g") && isNew(f[i+1]) && !isNew(f[1]) {
					args := append([]string{"-w", "-t", t, "-D"}, f[1:]...)
					if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
						errsOut = append(errsOut, fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, out))
					}
					break
				}
			}
		}
		for _, ch := range newChains {
			exec.Command("iptables", "-w", "-t", t, "-F", ch).Run()
		}
		for _, ch := range newChains {
			if out, err := exec.Command("iptables", "-w", "-t", t, "-X", ch).CombinedOutput(); err != nil {
				errsOut = append(errsOut, fmt.Errorf("iptables -t %s -X %s: %v: %s", t, ch, err, out))
			}
		}
	}
	return errors.Join(errsOut...)
}

// unmountUnder unmounts every mount point under the given directories, deepest first.
func unmountUnder(dirs ...string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := strings.ReplaceAll(fields[4], `\040`, " ")
		for _, d := range dirs {
			if d != "" && (mp == d || strings.HasPrefix(mp, d+"/")) {
				points = append(points, mp)
			}
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errsOut []error
	for _, p := range points {
		if p == "/run/netns" {
			continue // shared with other users of `ip netns`
		}
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errsOut = append(errsOut, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errsOut...)
}

// removeCgroups removes cgroup directories created since the snapshot, children first.
func removeCgroups(before map[string]bool) error {
	var errsOut []error
	for _, top := range cgroupTops() {
		if before[top] {
			continue
		}
		base := filepath.Base(top)
		if !strings.HasPrefix(base, "kubepods") && base != "k8s.io" && !strings.HasPrefix(base, "system.slice") && !strings.HasPrefix(base, "kubelet") {
			continue // not ours: another engineer's cgroup
		}
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for i := 0; i < 20; i++ {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				errsOut = append(errsOut, fmt.Errorf("rmdir %s: %w", d, err))
			}
		}
	}
	return errors.Join(errsOut...)
}

// splitRule splits a line of `iptables -S` into arguments, honouring double quotes (comments).
func splitRule(l string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(l); i++ {
		ch := l[i]
		switch {
		case ch == '\\' && inQuote && i+1 < len(l):
			i++
			cur.WriteByte(l[i])
		case ch == '"':
			inQuote = !inQuote
			have = true
		case ch == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// isMountPoint says whether path is a mount point (in /proc/self/mountinfo).
func isMountPoint(path string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}
