package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// quantile of sorted values (nearest rank): q=0.5 the median, q=0.99 the p99.
func quantile[T int64 | float64 | time.Duration](sorted []T, q float64) T {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

type dist struct {
	median, p99, min, max time.Duration
	n                     int
}

func distOf(ds []time.Duration) dist {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return dist{}
	}
	return dist{median: quantile(s, 0.5), p99: quantile(s, 0.99), min: s[0], max: s[len(s)-1], n: len(s)}
}

func floatMedian(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return quantile(s, 0.5)
}

// us formats a duration in microseconds (latency of one call), ms for longer ones.
func us(d time.Duration) string {
	if d >= 10*time.Millisecond {
		return ms(d)
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func rate(x float64) string { return fmt.Sprintf("%.0f calls/s", x) }

// loadResult is one fixed-duration run of concurrent callers.
type loadResult struct {
	calls, errors int64
	firstErr      error
	elapsed       time.Duration
	lat           []time.Duration
	cpu           cpuDelta
}

func (r loadResult) rate() float64 { return float64(r.calls) / r.elapsed.Seconds() }

// runLoad runs conc goroutines calling do back to back for dur (after a short warm-up that opens the
// connections), and measures CPU use over the measured window.
func runLoad(ctx context.Context, conc int, dur time.Duration, do func(context.Context) error, cs *cpuSampler) loadResult {
	warm := min(dur/5, 500*time.Millisecond)
	var phase atomic.Int32 // 0 warm-up, 1 measuring, 2 done
	var calls, errors atomic.Int64
	var firstErr atomic.Pointer[error]
	lats := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				ph := phase.Load()
				if ph == 2 {
					break
				}
				t0 := time.Now()
				err := do(ctx)
				d := time.Since(t0)
				if phase.Load() != 1 || ph != 1 {
					continue // count only calls that started and ended inside the window
				}
				if err != nil {
					errors.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				calls.Add(1)
				local = append(local, d)
			}
			lats[g] = local
		}()
	}
	time.Sleep(warm)
	before := cs.sample()
	t0 := time.Now()
	phase.Store(1)
	select {
	case <-time.After(dur):
	case <-ctx.Done():
	}
	phase.Store(2)
	elapsed := time.Since(t0)
	after := cs.sample()
	wg.Wait()
	res := loadResult{calls: calls.Load(), errors: errors.Load(), elapsed: elapsed, cpu: after.sub(before)}
	recordOthers(res.cpu.others())
	if p := firstErr.Load(); p != nil {
		res.firstErr = *p
	}
	for _, l := range lats {
		res.lat = append(res.lat, l...)
	}
	return res
}

// cpuSampler reads the CPU time used by this process, by some containers (their cgroups: what
// `docker stats` reports) and by the whole machine (/proc/stat), so that a throughput run can say
// which of them ran out of CPU.
type cpuSampler struct {
	docker     *client.Client
	containers []string // IDs
	names      []string
}

type cpuSample struct {
	wall          time.Time
	self          time.Duration            // user+system of this process
	selfSys       time.Duration            // system only
	containers    map[string]time.Duration // by name
	containersSys map[string]time.Duration // the kernel's part (system time), when the cgroup says
	machine       procStat
}

type procStat struct {
	user, system, softirq, idle, steal, total float64 // seconds
	ctxt                                      float64 // context switches
}

type cpuDelta struct {
	wall          time.Duration
	self          time.Duration
	selfSys       time.Duration
	containers    map[string]time.Duration
	containersSys map[string]time.Duration
	machine       procStat
}

func (cs *cpuSampler) sample() cpuSample {
	s := cpuSample{wall: time.Now(), containers: map[string]time.Duration{}, containersSys: map[string]time.Duration{}}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.selfSys = time.Duration(ru.Stime.Nano())
	}
	if cs != nil {
		for i, id := range cs.containers {
			s.containers[cs.names[i]] = containerCPU(cs.docker, id)
			if sys, ok := containerSys(id); ok {
				s.containersSys[cs.names[i]] = sys
			}
		}
	}
	s.machine = readProcStat()
	return s
}

func (a cpuSample) sub(b cpuSample) cpuDelta {
	d := cpuDelta{wall: a.wall.Sub(b.wall), self: a.self - b.self, selfSys: a.selfSys - b.selfSys, containers: map[string]time.Duration{}, containersSys: map[string]time.Duration{}}
	for k, v := range a.containers {
		d.containers[k] = v - b.containers[k]
	}
	for k, v := range a.containersSys {
		if old, ok := b.containersSys[k]; ok {
			d.containersSys[k] = v - old
		}
	}
	d.machine = procStat{
		user: a.machine.user - b.machine.user, system: a.machine.system - b.machine.system,
		softirq: a.machine.softirq - b.machine.softirq, idle: a.machine.idle - b.machine.idle,
		steal: a.machine.steal - b.machine.steal, total: a.machine.total - b.machine.total,
		ctxt: a.machine.ctxt - b.machine.ctxt,
	}
	return d
}

// others is the CPU that processes other than this one and the measured containers used during the
// window, in % of one core: what a shared machine takes away from the measurement.
func (d cpuDelta) others() float64 {
	ours := d.self
	for _, v := range d.containers {
		ours += v
	}
	busy := 100 * (d.machine.total - d.machine.idle) / d.wall.Seconds()
	return max(0, busy-d.pct(ours))
}

var (
	othersMu   sync.Mutex
	othersSeen []float64
)

func recordOthers(pct float64) {
	othersMu.Lock()
	othersSeen = append(othersSeen, pct)
	othersMu.Unlock()
}

// noise is the median and the largest CPU share (% of one core) that other processes took during
// the throughput runs, and how many runs there were.
func noise() (median, worst float64, n int) {
	othersMu.Lock()
	defer othersMu.Unlock()
	if len(othersSeen) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(othersSeen)
	slices.Sort(s)
	return quantile(s, 0.5), s[len(s)-1], len(s)
}

// pct is CPU time as a percentage of one core over the window.
func (d cpuDelta) pct(t time.Duration) float64 { return 100 * t.Seconds() / d.wall.Seconds() }

// describe says where the CPU went during a run, in % of one core (the machine has 100% × cores).
func (d cpuDelta) describe() string {
	var parts []string
	names := make([]string, 0, len(d.containers))
	for k := range d.containers {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if sys, ok := d.containersSys[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0f%% (of which kernel %.0f%%)", k, d.pct(d.containers[k]), d.pct(sys)))
		} else {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", k, d.pct(d.containers[k])))
		}
	}
	parts = append(parts, fmt.Sprintf("this Go process %.0f%% (of which kernel %.0f%%)", d.pct(d.self), d.pct(d.selfSys)))
	w := d.wall.Seconds()
	busy := d.machine.total - d.machine.idle
	parts = append(parts, fmt.Sprintf("whole machine busy %.0f%% of %d00%% (user %.0f%%, system %.0f%%, softirq %.0f%%, steal %.0f%%; everything else on the machine ≈ %.0f%%)",
		100*busy/w, len(cpuList()), 100*d.machine.user/w, 100*d.machine.system/w, 100*d.machine.softirq/w, 100*d.machine.steal/w, d.others()))
	return strings.Join(parts, "; ")
}

func cpuList() []struct{} {
	n := 0
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "cpu") && !strings.HasPrefix(line, "cpu ") {
				n++
			}
		}
	}
	return make([]struct{}, max(n, 1))
}

func readProcStat() procStat {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return procStat{}
	}
	var ctxt float64
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "ctxt ") {
			ctxt, _ = strconv.ParseFloat(strings.TrimSpace(l[5:]), 64)
		}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest guest_nice
	if len(f) < 9 || f[0] != "cpu" {
		return procStat{}
	}
	v := make([]float64, len(f))
	var total float64
	for i := 1; i < len(f) && i <= 8; i++ {
		x, _ := strconv.ParseFloat(f[i], 64)
		v[i] = x / 100 // USER_HZ
		total += v[i]
	}
	return procStat{user: v[1] + v[2], system: v[3] + v[6], idle: v[4] + v[5], softirq: v[7], steal: v[8], total: total, ctxt: ctxt}
}

// containerCPU is the CPU time a container has used: from its cgroup (v1 cpuacct or v2 cpu.stat),
// else from the Docker stats API.
func containerCPU(docker *client.Client, id string) time.Duration {
	for _, p := range []string{
		"/sys/fs/cgroup/cpuacct/docker/" + id + "/cpuacct.usage",
		"/sys/fs/cgroup/cpu,cpuacct/docker/" + id + "/cpuacct.usage",
		"/sys/fs/cgroup/cpuacct/system.slice/docker-" + id + ".scope/cpuacct.usage",
	} {
		if data, err := os.ReadFile(p); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
				return time.Duration(n)
			}
		}
	}
	for _, p := range []string{
		"/sys/fs/cgroup/system.slice/docker-" + id + ".scope/cpu.stat",
		"/sys/fs/cgroup/docker/" + id + "/cpu.stat",
	} {
		if data, err := os.ReadFile(p); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "usage_usec" {
					n, _ := strconv.ParseInt(f[1], 10, 64)
					return time.Duration(n) * time.Microsecond
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := docker.ContainerStats(ctx, id, client.ContainerStatsOptions{Stream: false})
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	var st struct {
		CPUStats struct {
			CPUUsage struct {
				TotalUsage int64 `json:"total_usage"`
			} `json:"cpu_usage"`
		} `json:"cpu_stats"`
	}
	if json.NewDecoder(res.Body).Decode(&st) != nil {
		return 0
	}
	return time.Duration(st.CPUStats.CPUUsage.TotalUsage)
}

// sysSample is the CPU used so far by Docker's daemons (dockerd, containerd, the per-container
// containerd-shims, fuse-overlayfs), by all containers (the docker cgroup) and by the whole machine:
// where the time of starting and stopping containers goes. Only the processes' own time is counted,
// not their reaped children's: a shim reaps its container's processes, whose time the container's
// cgroup already holds (and mostly spent before the window). Short-lived runc processes are
// therefore not attributed; they are in the machine's busy time.
type sysSample struct {
	wall       time.Time
	byComm     map[string]float64 // seconds
	containers time.Duration
	machine    procStat
}

var sysComms = map[string]string{
	"dockerd": "dockerd", "containerd": "containerd", "containerd-shim": "containerd-shim",
	"containerd-shim-runc-v2": "containerd-shim", "docker-proxy": "docker-proxy",
	"fuse-overlayfs": "fuse-overlayfs (container root filesystems)",
}

func sampleSys() sysSample {
	s := sysSample{wall: time.Now(), byComm: map[string]float64{}, machine: readProcStat()}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		open, closeP := strings.IndexByte(string(data), '('), strings.LastIndexByte(string(data), ')')
		if open < 0 || closeP < open {
			continue
		}
		cat, ok := sysComms[string(data[open+1:closeP])]
		if !ok {
			continue
		}
		f := strings.Fields(string(data[closeP+1:])) // f[0] is the state (field 3); utime is field 14
		if len(f) < 15 {
			continue
		}
		var t float64
		for _, i := range []int{11, 12} { // utime stime
			x, _ := strconv.ParseFloat(f[i], 64)
			t += x / 100
		}
		s.byComm[cat] += t
	}
	for _, p := range []string{"/sys/fs/cgroup/cpuacct/docker/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/docker/cpuacct.usage"} {
		if data, err := os.ReadFile(p); err == nil {
			n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			s.containers = time.Duration(n)
			break
		}
	}
	return s
}

// describeSys says where CPU went between two samples, in % of one core, summed over several windows.
type sysAcc struct {
	wall       time.Duration
	byComm     map[string]float64
	containers time.Duration
	busy       float64
	self       time.Duration
	replicas   int // containers started or stopped in the windows
	// own, when set, is the CPU of the containers this run started (their cgroups, from zero), used
	// instead of the docker cgroup's total, which holds other users' containers too.
	own    time.Duration
	hasOwn bool
}

func (a *sysAcc) add(before, after sysSample, selfCPU time.Duration) {
	if a.byComm == nil {
		a.byComm = map[string]float64{}
	}
	a.wall += after.wall.Sub(before.wall)
	for k, v := range after.byComm {
		a.byComm[k] += max(0, v-before.byComm[k])
	}
	a.containers += after.containers - before.containers
	a.busy += (after.machine.total - after.machine.idle) - (before.machine.total - before.machine.idle)
	a.self += selfCPU
}

func (a *sysAcc) describe() string {
	w := a.wall.Seconds()
	if w == 0 {
		return ""
	}
	keys := make([]string, 0, len(a.byComm))
	for k := range a.byComm {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := []string{fmt.Sprintf("whole machine busy %.0f%% of %d00%%", 100*a.busy/w, len(cpuList()))}
	containers := a.containers
	if a.hasOwn {
		containers = a.own
		parts = append(parts, fmt.Sprintf("the started containers (docker-init + the shim's Python start) %.0f%%", 100*containers.Seconds()/w))
	} else {
		parts = append(parts, fmt.Sprintf("all containers %.0f%%", 100*containers.Seconds()/w))
	}
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*a.byComm[k]/w))
	}
	parts = append(parts, fmt.Sprintf("this Go process %.0f%%", 100*a.self.Seconds()/w))
	out := strings.Join(parts, ", ")
	if a.replicas > 0 {
		attributed := containers.Seconds() + a.self.Seconds()
		for _, v := range a.byComm {
			attributed += v
		}
		per := attributed / float64(a.replicas)
		cores := float64(len(cpuList()))
		out += fmt.Sprintf(". That is ≈ %.0f ms of CPU per replica in the processes above (runc, kworkers and other kernel threads not counted; the containers' and daemons' figures include other users' containers on a shared machine), so 16 replicas need ≳ %.1f s of this machine's %.0f cores even with nothing else running", 1000*per, 16*per/cores, cores)
	}
	return out
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// containerSys is the system (kernel) CPU time of a container's cgroup: its socket syscalls and the
// network stack work done on their behalf.
func containerSys(id string) (time.Duration, bool) {
	for _, p := range []string{
		"/sys/fs/cgroup/cpuacct/docker/" + id + "/cpuacct.stat",
		"/sys/fs/cgroup/cpu,cpuacct/docker/" + id + "/cpuacct.stat",
	} {
		if data, err := os.ReadFile(p); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "system" {
					n, _ := strconv.ParseInt(f[1], 10, 64)
					return time.Duration(n) * 10 * time.Millisecond, true // USER_HZ
				}
			}
		}
	}
	for _, p := range []string{
		"/sys/fs/cgroup/system.slice/docker-" + id + ".scope/cpu.stat",
		"/sys/fs/cgroup/docker/" + id + "/cpu.stat",
	} {
		if data, err := os.ReadFile(p); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "system_usec" {
					n, _ := strconv.ParseInt(f[1], 10, 64)
					return time.Duration(n) * time.Microsecond, true
				}
			}
		}
	}
	return 0, false
}
