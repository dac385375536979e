package cmd

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
	"github.com/rfenv/rfenv/pkg/testutil/sshd"
)

// TestE2ETransportAuto (issue 12 part 2): where a container's bridge address does not answer, as on
// Docker Desktop, rootless Docker or a Podman machine, `--transport auto` (the default) falls back to
// a port published on the daemon host's 127.0.0.1, and every command works there. The unroutable
// bridge is made for real: an iptables OUTPUT rule rejects the bridge subnet for one group ID, and
// rfenv runs with that group alone. Without the rule auto stays direct. Nothing is ever published
// beyond 127.0.0.1.
func TestE2ETransportAuto(t *testing.T) {
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	image := e2e.Image(t, "actor")
	free := newProcEnv(t, dir)

	// Without the rule the bridge answers: auto chooses direct.
	direct := uniqueName("autod")
	r := free.run("up", image, "--name", direct, "--json")
	if r.code != 0 {
		t.Fatalf("up: %d %s", r.code, r.stderr)
	}
	if v := decodeJSON[envView](t, r.stdout); v.Transport != "direct" || v.Instances[0].Address == "127.0.0.1" {
		t.Fatalf("auto on a routable bridge chose %q at %s, want direct at the bridge address", v.Transport, v.Instances[0].Address)
	}

	// The fault: the bridge subnet unreachable for processes of group gid, and only for them.
	gid := cutBridge(t, docker)
	cut := newProcEnv(t, dir)
	cut.gid = gid
	// It provably happened: the direct environment is unreachable for rfenv in that group, while
	// the same command outside it works.
	if r := cut.run("call", direct, "add", "--arg", "a=1", "--arg", "b=2"); r.code != ExitInfra || !strings.Contains(r.stderr, "--transport auto") {
		t.Fatalf("a call to a direct replica across the cut bridge: exit %d (%s), want %d advising --transport auto", r.code, r.stderr, ExitInfra)
	}
	if r := free.run("call", direct, "add", "--arg", "a=1", "--arg", "b=2"); r.code != 0 || strings.TrimSpace(r.stdout) != "3" {
		t.Fatalf("the same call outside the group: %d %q %s", r.code, r.stdout, r.stderr)
	}

	// auto behind the cut: published, said so, and every command works there.
	name := uniqueName("autop")
	r = cut.run("up", image, "--name", name, "--replicas", "2")
	if r.code != 0 {
		t.Fatalf("up behind the cut bridge: %d %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "transport published (auto") {
		t.Errorf("up did not say it chose published: %s", r.stderr)
	}
	rec := readStateFile(t, dir).Environments[name]
	if rec.Transport != "published" || len(rec.Instances) != 2 {
		t.Fatalf("state records transport %q with %d replicas, want published with 2", rec.Transport, len(rec.Instances))
	}
	var ids []string
	for _, in := range rec.Instances {
		ids = append(ids, in.ContainerID)
		if in.Address != "127.0.0.1" || in.Port == 0 {
			t.Errorf("replica %d recorded at %s:%d, want 127.0.0.1 and the published port", in.Index, in.Address, in.Port)
		}
		// docker port never shows a binding other than 127.0.0.1.
		for _, line := range strings.Split(strings.TrimSpace(dockerCLI(t, "port", in.ContainerID)), "\n") {
			if want := fmt.Sprintf("-> 127.0.0.1:%d", in.Port); !strings.HasSuffix(line, want) {
				t.Errorf("docker port %s: %q, want only %q", in.ContainerName, line, want)
			}
		}
	}
	e2e.AssertLoopbackOnly(t, docker, ids)

	ok := func(args ...string) result {
		t.Helper()
		r := cut.run(args...)
		if r.code != 0 {
			t.Fatalf("rfenv %v behind the cut bridge: %d %s", args, r.code, r.stderr)
		}
		return r
	}
	if got := strings.TrimSpace(ok("call", name, "add", "--arg", "a=40", "--arg", "b=2").stdout); got != "42" {
		t.Errorf("call = %q, want 42", got)
	}
	if got := ok("methods", name).stdout; !strings.Contains(got, "add") {
		t.Errorf("methods: %s", got)
	}
	st := ok("stats", name, "--json").stdout
	if strings.Count(st, `"healthy":true`) != 2 || !strings.Contains(st, `"address":"127.0.0.1"`) {
		t.Errorf("stats --json: want 2 healthy replicas at 127.0.0.1: %s", st)
	}
	key := strings.TrimSpace(ok("session", "open", name).stdout)
	if got := strings.TrimSpace(ok("call", name, "add", "--arg", "a=1", "--session", key).stdout); got != "2" {
		t.Errorf("session call = %q", got)
	}
	ok("session", "close", name, key)
	if got := ok("call", name, "echo", "--batch", "-", "--concurrency", "4").stdout; got != "" {
		t.Errorf("an empty batch printed %q", got)
	}
	if v := decodeJSON[[]envView](t, ok("ls", "--json").stdout); !hasTransport(v, name, "published") {
		t.Errorf("ls --json does not show %s as published: %+v", name, v)
	}
	ok("logs", name)
	// A second up keeps the replicas (the same configuration) and stays published.
	ok("up", image, "--name", name, "--replicas", "2")
	if again := readStateFile(t, dir).Environments[name]; again.Transport != "published" || again.Instances[0].ContainerID != rec.Instances[0].ContainerID {
		t.Errorf("a second up: transport %q, container %s (was %s)", again.Transport, again.Instances[0].ContainerID, rec.Instances[0].ContainerID)
	}
	ok("down", name)
	for _, id := range ids {
		if _, err := docker.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{}); err == nil {
			t.Errorf("container %s survived down", id)
		}
	}
	free.run("down", direct)
}

// cutBridge makes the default bridge network's subnet unreachable (ENETUNREACH) for processes of a
// group ID made up for the test, with an iptables OUTPUT rule matched on the owner, and returns it.
func cutBridge(t *testing.T, docker *client.Client) uint32 {
	t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("iptables (Debian's iptables package) is needed to make the bridge unreachable: %v", err)
	}
	var b [2]byte
	rand.Read(b[:])
	gid := 40000 + uint32(binary.BigEndian.Uint16(b[:]))%20000
	rule := []string{"OUTPUT", "-m", "owner", "--gid-owner", strconv.Itoa(int(gid)), "-d", bridgeSubnet(t, docker), "-j", "REJECT", "--reject-with", "icmp-net-unreachable"}
	if out, err := exec.Command("iptables", append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("iptables -I %v: %v: %s", rule, err, out)
	}
	t.Cleanup(func() { exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() })
	return gid
}

// bridgeSubnet is the default bridge network's IPv4 subnet.
func bridgeSubnet(t *testing.T, docker *client.Client) string {
	t.Helper()
	n, err := docker.NetworkInspect(context.Background(), "bridge", client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range n.Network.IPAM.Config {
		if c.Subnet.IsValid() && c.Subnet.Addr().Is4() {
			return c.Subnet.String()
		}
	}
	t.Fatalf("the bridge network has no IPv4 subnet: %+v", n.Network.IPAM.Config)
	return ""
}

func hasTransport(envs []envView, name, transport string) bool {
	for _, e := range envs {
		if e.Name == name {
			return e.Transport == transport
		}
	}
	return false
}

// TestE2ETransportTCPDaemon: a tcp:// daemon that is not on this machine publishes ports on its own
// host's loopback, out of reach. The daemon here is this machine's, served on the host side of a
// veth pair (an address rfenv cannot tell from another machine's). --transport published is
// refused, naming ssh://; auto where the bridge has no route fails at once with the same way out;
// auto where it has one reaches the replicas directly and publishes nothing.
func TestE2ETransportTCPDaemon(t *testing.T) {
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	image := e2e.Image(t, "actor")
	ns := sshd.NewNetns(t)
	daemon := forwardDocker(t, docker, ns.HostIP)
	free := newProcEnv(t, dir)
	free.extra = []string{"DOCKER_HOST=" + daemon}
	id := state.StateID(dir)

	name := uniqueName("tcppub")
	r := free.run("up", image, "--name", name, "--transport", "published")
	t.Logf("up --transport published: exit %d in %s", r.code, r.elapsed)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "ssh://") || !strings.Contains(r.stderr, daemon) {
		t.Fatalf("up --transport published on %s: exit %d, %s; want %d naming the daemon and ssh://", daemon, r.code, r.stderr, ExitUsage)
	}
	if n := len(e2e.List(t, docker, id)); n != 0 {
		t.Fatalf("a refused up left %d containers", n)
	}

	cut := newProcEnv(t, dir)
	cut.extra, cut.gid = free.extra, cutBridge(t, docker)
	name = uniqueName("tcpcut")
	r = cut.run("up", image, "--name", name)
	t.Logf("auto with no route: exit %d in %s", r.code, r.elapsed)
	if r.code != ExitInfra || !strings.Contains(r.stderr, "not routable") || !strings.Contains(r.stderr, "ssh://") {
		t.Fatalf("auto on %s with no route to the bridge: exit %d, %s; want %d explaining the route and naming ssh://", daemon, r.code, r.stderr, ExitInfra)
	}
	if n := len(e2e.List(t, docker, id)); n != 0 {
		t.Errorf("the failed up left %d containers", n)
	}

	name = uniqueName("tcpok")
	r = free.run("up", image, "--name", name, "--json")
	t.Logf("auto with a route: exit %d in %s", r.code, r.elapsed)
	if r.code != 0 {
		t.Fatalf("auto on %s: %d %s", daemon, r.code, r.stderr)
	}
	v := decodeJSON[envView](t, r.stdout)
	if v.Transport != "direct" {
		t.Errorf("auto on a tcp:// daemon with a routable bridge chose %q", v.Transport)
	}
	var ids []string
	for _, c := range e2e.List(t, docker, id) {
		ids = append(ids, c.ID)
		if c := e2e.Inspect(t, docker, c.ID); c.HostConfig != nil && len(c.HostConfig.PortBindings) > 0 {
			t.Errorf("%s publishes %v on a daemon whose loopback is out of reach", c.Name, c.HostConfig.PortBindings)
		}
	}
	if got := strings.TrimSpace(free.run("call", name, "add", "--arg", "a=2", "--arg", "b=3").stdout); got != "5" {
		t.Errorf("call = %q", got)
	}
	if r := free.run("down", name); r.code != 0 {
		t.Errorf("down: %d %s", r.code, r.stderr)
	}
}

// forwardDocker serves the local daemon's socket on addr (a TCP port Docker's clients reach as a
// tcp:// daemon) until the test ends, and returns the daemon's URL.
func forwardDocker(t *testing.T, docker *client.Client, addr netip.Addr) string {
	t.Helper()
	sock, ok := strings.CutPrefix(docker.DaemonHost(), "unix://")
	if !ok {
		t.Fatalf("the test daemon is at %s; forwarding needs its unix socket", docker.DaemonHost())
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(addr.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				d, err := net.Dial("unix", sock)
				if err != nil {
					return
				}
				defer d.Close()
				go io.Copy(d, c)
				io.Copy(c, d)
			}()
		}
	}()
	return "tcp://" + ln.Addr().String()
}
