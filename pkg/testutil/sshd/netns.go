//go:build linux

package sshd

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rfenv/rfenv/pkg/testutil/netutil"
)

// Netns is a network namespace made for one test, joined to the host by a veth pair.
//
// What StartInNetns changes on the machine, and how it is undone by the test's cleanup:
//   - a network namespace rfenv-<pid>-<hex> (ip netns add; removed with ip netns del, which also
//     destroys both ends of the veth pair);
//   - a veth pair rfv<hex>h (host side) / rfv<hex>n (namespace side) with a /30 from 10.200.0.0/16
//     that no interface on the host uses: host side .1, namespace side .2; the namespace's default
//     route points at the host side so that it reaches Docker's bridge (172.17.0.0/16);
//   - a route "unreachable 10.200.x.y/30 metric 4242", so that while the link is cut (CutLink removes
//     the connected route) packets for the namespace are dropped instead of leaving by the default
//     route; deleted at cleanup;
//   - four iptables rules in the DOCKER-USER chain (FORWARD if Docker has not made that chain)
//     accepting forwarded traffic between rfv<hex>h and Docker's bridges (docker0, br-+) in both
//     directions, commented with the namespace's name, because Docker sets the FORWARD policy to
//     DROP; anything else from the namespace is still dropped. They are deleted at cleanup;
//   - net.ipv4.ip_forward is set to 1 if it was 0 (Docker normally has set it already), and set
//     back to 0 at cleanup.
//
// Leftovers of a test binary that died before its cleanup (namespaces and rules named after a pid
// that no longer runs) are removed the next time StartInNetns runs.
type Netns struct {
	// Name is the namespace's name (ip netns list).
	Name string
	// HostIf and NsIf are the veth interfaces on the host side and inside the namespace.
	HostIf, NsIf string
	// HostIP and NsIP are the addresses of HostIf and NsIf (a /30).
	HostIP, NsIP netip.Addr
}

// StartInNetns creates a network namespace and runs sshd inside it on the namespace's address,
// port 22. The Docker socket is reachable as usual (the file system is shared), and so are
// containers on Docker's bridge network, through the host.
func StartInNetns(t testing.TB, opts ...Option) *Server {
	t.Helper()
	ns := NewNetns(t)
	s := prepare(t, ns.NsIP.String(), 22, ns, opts)
	s.start()
	return s
}

// NewNetns creates a namespace as described on Netns; the test's cleanup removes it.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("sshd: network namespaces need root (running as uid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("sshd: the ip command is missing: apt-get install iproute2")
	}
	cleanStale(t)

	suffix := randHex(t, 3)
	ns := &Netns{
		Name:   fmt.Sprintf("rfenv-%d-%s", os.Getpid(), suffix),
		HostIf: "rfv" + suffix + "h",
		NsIf:   "rfv" + suffix + "n",
	}
	ns.HostIP, ns.NsIP = freeSubnet(t)
	comment := ns.Name

	var undo []func()
	t.Cleanup(func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	})
	must := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("sshd: %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	quiet := func(args ...string) func() {
		return func() {
			if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
				t.Logf("sshd cleanup: %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
	}

	// Bringing the link down (CutLink) removes the connected route to the /30; without this
	// unreachable route, packets for the namespace would then follow the default route off the
	// machine. Its metric is higher than the connected route's, so it only matters while that
	// route is gone.
	subnet := netip.PrefixFrom(ns.HostIP, 30).Masked().String()
	must("ip", "route", "add", "unreachable", subnet, "metric", "4242")
	undo = append(undo, quiet("ip", "route", "del", "unreachable", subnet, "metric", "4242"))
	must("ip", "netns", "add", ns.Name)
	undo = append(undo, quiet("ip", "netns", "del", ns.Name))
	must("ip", "link", "add", ns.HostIf, "type", "veth", "peer", "name", ns.NsIf)
	// Deleting the namespace destroys NsIf and with it HostIf; this covers a failure in between.
	undo = append(undo, func() {
		if _, err := net.InterfaceByName(ns.HostIf); err == nil {
			quiet("ip", "link", "del", ns.HostIf)()
		}
	})
	must("ip", "link", "set", ns.NsIf, "netns", ns.Name)
	must("ip", "addr", "add", ns.HostIP.String()+"/30", "dev", ns.HostIf)
	must("ip", "link", "set", ns.HostIf, "up")
	must("ip", "-n", ns.Name, "addr", "add", ns.NsIP.String()+"/30", "dev", ns.NsIf)
	must("ip", "-n", ns.Name, "link", "set", "lo", "up")
	must("ip", "-n", ns.Name, "link", "set", ns.NsIf, "up")
	must("ip", "-n", ns.Name, "route", "add", "default", "via", ns.HostIP.String())

	chain := "DOCKER-USER"
	if err := exec.Command("iptables", "-w", "-n", "-L", chain).Run(); err != nil {
		chain = "FORWARD"
	}
	// Only between the namespace and Docker's bridges (docker0, br-<id>): the namespace must not
	// reach anything else through the host.
	for _, bridge := range []string{"docker0", "br-+"} {
		for _, dirs := range [][2]string{{"-i", "-o"}, {"-o", "-i"}} {
			rule := []string{chain, dirs[0], ns.HostIf, dirs[1], bridge,
				"-m", "comment", "--comment", comment, "-j", "ACCEPT"}
			must(append([]string{"iptables", "-w", "-I"}, rule...)...)
			undo = append(undo, quiet(append([]string{"iptables", "-w", "-D"}, rule...)...))
		}
	}

	forwardMu.Lock()
	defer forwardMu.Unlock()
	b, err := os.ReadFile(ipForward)
	if err != nil {
		t.Fatalf("sshd: read %s: %v", ipForward, err)
	}
	if strings.TrimSpace(string(b)) == "0" {
		if err := os.WriteFile(ipForward, []byte("1\n"), 0o644); err != nil {
			t.Fatalf("sshd: enable IPv4 forwarding: %v", err)
		}
		t.Logf("sshd: set %s to 1 (restored to 0 at cleanup)", ipForward)
		undo = append(undo, func() {
			forwardMu.Lock()
			defer forwardMu.Unlock()
			if err := os.WriteFile(ipForward, []byte("0\n"), 0o644); err != nil {
				t.Logf("sshd cleanup: restore %s: %v", ipForward, err)
			}
		})
	}
	return ns
}

const ipForward = "/proc/sys/net/ipv4/ip_forward"

var forwardMu sync.Mutex

// CutLink sets the host side of the veth pair down: traffic to the namespace is dropped.
func (n *Netns) CutLink(t testing.TB) {
	t.Helper()
	n.link(t, "down")
}

// RestoreLink sets the host side of the veth pair up again and restores the route to the namespace.
func (n *Netns) RestoreLink(t testing.TB) {
	t.Helper()
	n.link(t, "up")
}

func (n *Netns) link(t testing.TB, state string) {
	t.Helper()
	if out, err := exec.Command("ip", "link", "set", n.HostIf, state).CombinedOutput(); err != nil {
		t.Fatalf("sshd: ip link set %s %s: %v: %s", n.HostIf, state, err, out)
	}
}

// freeSubnet picks a /30 in 10.200.0.0/16 that overlaps no address or route on the host, and
// returns its two usable addresses.
func freeSubnet(t testing.TB) (host, ns netip.Addr) {
	t.Helper()
	p, err := netutil.FreeSubnet(netip.MustParsePrefix("10.200.0.0/16"), 30)
	if err != nil {
		t.Fatalf("sshd: %v", err)
	}
	return p.Addr().Next(), p.Addr().Next().Next()
}

func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("sshd: random: %v", err)
	}
	return hex.EncodeToString(b)
}

var staleOnce sync.Once

var staleName = regexp.MustCompile(`rfenv-(\d+)-[0-9a-f]+`)

// cleanStale removes namespaces and iptables rules left by test binaries that are gone.
func cleanStale(t testing.TB) {
	staleOnce.Do(func() {
		dead := func(name string) bool {
			m := staleName.FindStringSubmatch(name)
			if m == nil {
				return false
			}
			pid, _ := strconv.Atoi(m[1])
			return pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH
		}
		if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
			for _, line := range strings.Split(string(out), "\n") {
				f := strings.Fields(line)
				if len(f) > 0 && strings.HasPrefix(f[0], "rfenv-") && dead(f[0]) {
					t.Logf("sshd: removing stale namespace %s", f[0])
					_ = exec.Command("ip", "netns", "del", f[0]).Run()
				}
			}
		}
		for _, chain := range []string{"DOCKER-USER", "FORWARD"} {
			out, err := exec.Command("iptables", "-w", "-S", chain).Output()
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(out), "\n") {
				if !strings.HasPrefix(line, "-A ") || !dead(line) {
					continue
				}
				args := append([]string{"-w", "-D"}, strings.Fields(strings.TrimPrefix(line, "-A "))...)
				t.Logf("sshd: removing stale iptables rule %s", line)
				_ = exec.Command("iptables", args...).Run()
			}
		}
	})
}
