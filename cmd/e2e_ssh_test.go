//go:build linux

package cmd

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/dockerd"
	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
	"github.com/rfenv/rfenv/pkg/testutil/sshd"
)

// The end-to-end tests of remote hosts: real OpenSSH servers (pkg/testutil/sshd) in front of the
// machine's Docker daemon or of a second, empty daemon (pkg/testutil/dockerd), driven through the
// CLI in-process. localhost and ssh://root@127.0.0.1:PORT reach the same daemon, so containers
// seen through both must count once.

// noUserSSH makes the test independent of the machine's ssh setup: HOME is an empty directory (no
// ~/.ssh) and no ssh-agent is used. It returns HOME.
func noUserSSH(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	return home
}

// knownHostsFor writes a known_hosts file trusting the servers' host keys.
func knownHostsFor(t *testing.T, servers ...*sshd.Server) string {
	t.Helper()
	var b strings.Builder
	for _, s := range servers {
		b.WriteString(s.KnownHostsLine() + "\n")
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sshFlags are the global flags that reach the servers with their client keys and known_hosts.
func sshFlags(knownHosts string, servers ...*sshd.Server) []string {
	flags := []string{"--ssh-known-hosts", knownHosts, "--ssh-config", "none"}
	for _, s := range servers {
		flags = append(flags, "--ssh-identity", s.ClientKeyPath)
	}
	return flags
}

func with(flags []string, args ...string) []string { return append(slices.Clone(flags), args...) }

// canonical is the form of a host spec that rfenv records.
func canonical(t *testing.T, spec string) string {
	t.Helper()
	sp, err := host.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return sp.Raw
}

func unquote(s string) string { return strings.Trim(strings.TrimSpace(s), `"`) }

// managedOn lists the rfenv containers of one environment on a daemon reached directly.
func managedOn(items []container.Summary, env string) []container.Summary {
	var out []container.Summary
	for _, c := range items {
		if c.Labels[containers.LabelManaged] == "true" && c.Labels[containers.LabelEnv] == env {
			out = append(out, c)
		}
	}
	return out
}

// upCallDown brings one replica up on spec with the given global flags, calls it, checks that stats
// name the host and that the container runs on the machine's daemon, and takes it down.
func upCallDown(t *testing.T, c *cli, flags []string, name, spec string) {
	t.Helper()
	docker := e2e.Docker(t)
	id := state.StateID(c.stateDir)
	up := decodeJSON[envView](t, c.ok(with(flags, "up", e2e.Image(t, "actor"), "--name", name, "--host", spec, "--json")...).stdout)
	want := canonical(t, spec)
	if len(up.Instances) != 1 || up.Instances[0].Host != want || !slices.Equal(up.Hosts, []string{want}) {
		t.Fatalf("up --json = %+v, want one replica on %s", up, want)
	}
	if got := unquote(c.ok(with(flags, "call", name, "add", "--arg", "a=40", "--arg", "b=2")...).stdout); got != "42" {
		t.Fatalf("add through %s = %q", spec, got)
	}
	st := decodeJSON[pool.Stats](t, c.ok(with(flags, "stats", name, "--json")...).stdout)
	// Requests that failed are not ours: a call of another test to a removed container's address
	// can reach a new container that got the address (and is refused for its token).
	if st.HealthyInstances != 1 || st.Instances[0].Host != want || st.Instances[0].Requests-st.Instances[0].Errors != 1 {
		t.Fatalf("stats = %+v", st)
	}
	if n := len(managedOn(e2e.List(t, docker, id), name)); n != 1 {
		t.Fatalf("%d containers of %s on the daemon, want 1", n, name)
	}
	c.ok(with(flags, "down", name)...)
	if n := len(managedOn(e2e.List(t, docker, id), name)); n != 0 {
		t.Fatalf("%d containers of %s left after down", n, name)
	}
}

// TestE2ESSHAuth: `up`, `call`, `stats` and `down` through an SSH host authenticated with a key file
// (--ssh-identity), with a key only the ssh-agent holds, and through an alias of ~/.ssh/config that
// names the address, port, user and key (and ~/.ssh/known_hosts, the default, trusts the server).
func TestE2ESSHAuth(t *testing.T) {
	s := sshd.Start(t)
	c := newCLI(t, e2e.StateDir(t))

	t.Run("key file", func(t *testing.T) {
		noUserSSH(t)
		upCallDown(t, c, sshFlags(knownHostsFor(t, s), s), "sshkey", s.Target(""))
	})

	t.Run("agent", func(t *testing.T) {
		noUserSSH(t)
		sock := sshd.StartAgent(t)
		keyPath := filepath.Join(t.TempDir(), "agent_key")
		s.AuthorizeKey(sshd.WriteKey(t, keyPath, ""))
		add := exec.Command("ssh-add", keyPath)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add: %v: %s", err, out)
		}
		os.Remove(keyPath) // only the agent can sign now
		t.Setenv("SSH_AUTH_SOCK", sock)
		flags := []string{"--ssh-known-hosts", knownHostsFor(t, s), "--ssh-config", "none"}
		upCallDown(t, c, flags, e2e.Name("sshagent"), s.Target(""))

		// Without the agent no key is left: a clear authentication error, exit 4.
		t.Setenv("SSH_AUTH_SOCK", "")
		r := c.fails(ExitInfra, with(flags, "up", e2e.Image(t, "actor"), "--name", e2e.Name("sshagent"), "--host", s.Target(""))...)
		if !strings.Contains(r.stderr, "no ssh key") || !strings.Contains(r.stderr, "127.0.0.1") {
			t.Errorf("up without a usable key: %s", r.stderr)
		}
	})

	t.Run("config alias", func(t *testing.T) {
		home := noUserSSH(t)
		dotSSH := filepath.Join(home, ".ssh")
		if err := os.MkdirAll(dotSSH, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := strings.Join([]string{
			"Host rfenv-test-box",
			"  HostName " + s.Host,
			"  Port " + strconv.Itoa(s.Port),
			"  User root",
			"  IdentityFile " + s.ClientKeyPath,
			"",
		}, "\n")
		if err := os.WriteFile(filepath.Join(dotSSH, "config"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		s.WriteKnownHosts(t, filepath.Join(dotSSH, "known_hosts"))
		upCallDown(t, c, nil, "sshalias", "ssh://rfenv-test-box")
	})
}

// TestE2ESSHHostKeys: a host key in known_hosts is accepted; an unknown one stops `up` (exit 4) with the
// host, the fingerprint, the line to add and --ssh-accept-new; --ssh-accept-new records it and works;
// a changed key stops `up` saying so, with or without --ssh-accept-new, and known_hosts is left as is.
// Nothing is started when a host key stops `up`.
func TestE2ESSHHostKeys(t *testing.T) {
	noUserSSH(t)
	s := sshd.Start(t)
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	docker := e2e.Docker(t)
	image := e2e.Image(t, "actor")
	spec := s.Target("")
	hostName := "[127.0.0.1]:" + strconv.Itoa(s.Port)
	fingerprint := ssh.FingerprintSHA256(s.HostKey)
	nothingRuns := func(when string) {
		t.Helper()
		if left := e2e.List(t, docker, state.StateID(dir)); len(left) != 0 {
			t.Errorf("%s: %d containers run, want none", when, len(left))
		}
		if ls := decodeJSON[[]envView](t, c.ok("ls", "--json").stdout); len(ls) != 0 {
			t.Errorf("%s: ls = %+v, want nothing", when, ls)
		}
	}

	// Unknown: known_hosts does not exist yet.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	flags := []string{"--ssh-known-hosts", kh, "--ssh-config", "none", "--ssh-identity", s.ClientKeyPath}
	r := c.fails(ExitInfra, with(flags, "up", image, "--name", e2e.Name("hk"), "--host", spec)...)
	for _, want := range []string{hostName, fingerprint, s.KnownHostsLine(), "--ssh-accept-new", kh, "unknown"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("unknown host key: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if _, err := os.Stat(kh); err == nil {
		t.Errorf("known_hosts was written without --ssh-accept-new")
	}
	nothingRuns("unknown host key")

	// --ssh-accept-new trusts it, records it, and up goes on.
	c.ok(with(flags, "--ssh-accept-new", "up", image, "--name", e2e.Name("hk"), "--host", spec)...)
	verify, err := knownhosts.New(kh)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(s.Addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.Port}, s.HostKey); err != nil {
		t.Fatalf("--ssh-accept-new did not record the server's key in %s: %v", kh, err)
	}
	// Accepted: the recorded key is enough from now on.
	if got := unquote(c.ok(with(flags, "call", e2e.Name("hk"), "replica")...).stdout); got != "0" {
		t.Fatalf("replica = %q", got)
	}
	c.ok(with(flags, "down", e2e.Name("hk"))...)
	nothingRuns("down")

	// Changed: known_hosts holds another key for the server.
	other := sshd.WriteKey(t, filepath.Join(t.TempDir(), "other_host_key"), "")
	changed := knownhosts.Line([]string{hostName}, other) + "\n"
	if err := os.WriteFile(kh, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{nil, {"--ssh-accept-new"}} {
		r := c.fails(ExitInfra, with(append(slices.Clone(flags), extra...), "up", image, "--name", e2e.Name("hk"), "--host", spec)...)
		for _, want := range []string{"CHANGED", hostName, fingerprint, ssh.FingerprintSHA256(other), kh + ":1", s.KnownHostsLine()} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("changed host key %v: stderr lacks %q:\n%s", extra, want, r.stderr)
			}
		}
		if b, _ := os.ReadFile(kh); string(b) != changed {
			t.Errorf("changed host key %v: known_hosts was modified:\n%s", extra, b)
		}
		nothingRuns("changed host key")
	}
}

// TestE2ESSHMixedPool: four replicas over localhost, an sshd on 127.0.0.1 and an sshd in a network
// namespace (all in front of the machine's daemon), placed in order and wrapping (the fourth is on
// localhost again). Calls reach every replica, stats, ls and the state file name each replica's host,
// `up` again reuses all four although each container is seen through three host specs, scaling down
// removes replicas 2 and 3, and down removes everything, counting each container once.
func TestE2ESSHMixedPool(t *testing.T) {
	noUserSSH(t)
	a := sshd.Start(t)
	b := sshd.StartInNetns(t)
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	docker := e2e.Docker(t)
	id := state.StateID(dir)
	flags := sshFlags(knownHostsFor(t, a, b), a, b)
	hosts := []string{"localhost", a.Target(""), b.Target("")}
	want := []string{"localhost", canonical(t, a.Target("")), canonical(t, b.Target("")), "localhost"}
	upArgs := []string{"up", e2e.Image(t, "actor"), "--name", e2e.Name("mix"), "--lb", "round_robin", "--json"}
	for _, h := range hosts {
		upArgs = append(upArgs, "--host", h)
	}

	up := decodeJSON[envView](t, c.ok(with(flags, append(upArgs, "--replicas", "4")...)...).stdout)
	if !slices.Equal(up.Hosts, want[:3]) || len(up.Instances) != 4 {
		t.Fatalf("up --json = %+v", up)
	}
	for i, in := range up.Instances {
		if in.Index != i || in.Host != want[i] || in.Address == "" {
			t.Errorf("replica %d: %+v, want it on %s", i, in, want[i])
		}
	}
	if n := len(e2e.List(t, docker, id)); n != 4 {
		t.Fatalf("%d containers on the daemon, want 4", n)
	}
	rec := readState(t, dir).Environments[e2e.Name("mix")]
	if rec == nil || len(rec.Instances) != 4 || !slices.Equal(rec.Hosts, want[:3]) {
		t.Fatalf("state file entry = %+v", rec)
	}
	for i, in := range rec.Instances {
		if in.Host != want[i] {
			t.Errorf("state file: replica %d on %q, want %q", i, in.Host, want[i])
		}
	}

	// Round robin over separate processes: every replica, through every kind of host, answers.
	seen := map[string]int{}
	for range 12 {
		seen[unquote(c.ok(with(flags, "call", e2e.Name("mix"), "replica")...).stdout)]++
	}
	if seen["0"] != 3 || seen["1"] != 3 || seen["2"] != 3 || seen["3"] != 3 {
		t.Errorf("12 round-robin calls reached %v, want 3 on each replica", seen)
	}
	st := decodeJSON[pool.Stats](t, c.ok(with(flags, "stats", e2e.Name("mix"), "--json")...).stdout)
	if st.TotalInstances != 4 || st.HealthyInstances != 4 || st.TotalRequests < 12 {
		t.Errorf("stats: %d/%d healthy, %d requests; want 4/4, 12", st.HealthyInstances, st.TotalInstances, st.TotalRequests)
	}
	for i, in := range st.Instances {
		// Failed requests are not ours (see upCallDown).
		if in.Index != i || in.Host != want[i] || !in.Healthy || in.Requests-in.Errors != 3 {
			t.Errorf("stats replica %d: %+v, want healthy on %s with 3 requests", i, in, want[i])
		}
	}
	ls := decodeJSON[[]envView](t, c.ok(with(flags, "ls", "--json")...).stdout)
	if len(ls) != 1 || !slices.Equal(ls[0].Hosts, want[:3]) || ls[0].Healthy == nil || *ls[0].Healthy != 4 {
		t.Fatalf("ls --json = %+v", ls)
	}
	for i, in := range ls[0].Instances {
		if in.Host != want[i] {
			t.Errorf("ls replica %d on %q, want %q", i, in.Host, want[i])
		}
	}
	if table := c.ok(with(flags, "stats", e2e.Name("mix"))...).stdout; !strings.Contains(table, want[1]) || !strings.Contains(table, want[2]) {
		t.Errorf("the stats table does not name the hosts:\n%s", table)
	}

	// Again: all four kept, though the daemon shows each container through three host specs.
	again := decodeJSON[envView](t, c.ok(with(flags, append(upArgs, "--replicas", "4")...)...).stdout)
	for i := range again.Instances {
		if again.Instances[i].ID != up.Instances[i].ID || again.Instances[i].Host != want[i] {
			t.Errorf("up again changed replica %d: %+v → %+v", i, up.Instances[i], again.Instances[i])
		}
	}
	if n := len(e2e.List(t, docker, id)); n != 4 {
		t.Fatalf("%d containers after up again, want 4", n)
	}

	// Scale down: replicas 2 (the namespace's host) and 3 go, 0 and 1 stay.
	down := decodeJSON[envView](t, c.ok(with(flags, append(upArgs, "--replicas", "2")...)...).stdout)
	if len(down.Instances) != 2 || down.Instances[0].ID != up.Instances[0].ID || down.Instances[1].ID != up.Instances[1].ID {
		t.Fatalf("up --replicas 2 = %+v", down.Instances)
	}
	left := e2e.List(t, docker, id)
	gone := func(s container.Summary) bool { return s.ID == up.Instances[2].ID || s.ID == up.Instances[3].ID }
	if len(left) != 2 || slices.ContainsFunc(left, gone) {
		t.Fatalf("after scaling down, %d containers run (replicas 2 and 3 should be gone)", len(left))
	}

	r := c.ok(with(flags, "down", e2e.Name("mix"), "--json")...)
	rep := decodeJSON[struct {
		Environments []struct {
			Name    string `json:"name"`
			Removed int    `json:"removed"`
		} `json:"environments"`
	}](t, r.stdout)
	if len(rep.Environments) != 1 || rep.Environments[0].Removed != 2 {
		t.Errorf("down --json = %s, want 2 removed (each container once)", r.stdout)
	}
	if n := len(e2e.List(t, docker, id)); n != 0 {
		t.Fatalf("%d containers left after down", n)
	}
}

func readState(t *testing.T, dir string) *state.File {
	t.Helper()
	st, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestE2ESSHBuildOnRemote: `rfenv build --host ssh://…/second.sock` builds with the BuildKit of a second
// daemon over SSH (the machine's daemon never gets the image); `up --no-transfer` runs it there, calls
// go through the tunnel, and `down` removes the container from that daemon.
func TestE2ESSHBuildOnRemote(t *testing.T) {
	noUserSSH(t)
	d := dockerd.Start(t)
	d.LoadImage(t, dockertest.BaseImage()) // builds FROM it; no registry is reachable
	s := sshd.Start(t)
	c := newCLI(t, e2e.StateDir(t))
	docker := e2e.Docker(t)
	flags := sshFlags(knownHostsFor(t, s), s)
	spec := s.Target(d.Socket)
	tag := "rfenv-test-remote-build-" + strconv.Itoa(os.Getpid()) + ":latest"

	r := c.ok(with(flags, "build", e2e.EnvDir(t, "actor"), "-t", tag, "--host", spec,
		"--base-image", dockertest.BaseImage(), "--progress", "plain")...)
	if strings.TrimSpace(r.stdout) != tag {
		t.Fatalf("build stdout = %q, want %q", r.stdout, tag)
	}
	if !strings.Contains(r.stderr, "COPY") {
		t.Errorf("no build progress on stderr: %s", r.stderr)
	}
	if !d.HasImage(t, tag) || !d.HasImage(t, strings.TrimSuffix(tag, ":latest")+":latest-base") {
		t.Fatalf("%s (and its -base) are not on the second daemon after the remote build", tag)
	}
	if _, err := docker.ImageInspect(context.Background(), tag); !cerrdefs.IsNotFound(err) {
		t.Fatalf("the machine's daemon has %s (err %v): the build did not run remotely only", tag, err)
	}

	r = c.ok(with(flags, "up", tag, "--name", e2e.Name("rbuild"), "--host", spec, "--no-transfer", "--replicas", "2", "--json")...)
	up := decodeJSON[envView](t, r.stdout)
	if len(up.Instances) != 2 || up.Instances[0].Host != canonical(t, spec) {
		t.Fatalf("up --json = %+v", up)
	}
	for _, in := range up.Instances {
		if a, err := netip.ParseAddr(in.Address); err != nil || !d.Subnet.Contains(a) {
			t.Errorf("replica %d at %q, want an address on the second daemon's bridge %v", in.Index, in.Address, d.Subnet)
		}
	}
	if n := len(managedOn(d.Containers(t), e2e.Name("rbuild"))); n != 2 {
		t.Fatalf("%d containers of rbuild on the second daemon, want 2", n)
	}
	if n := len(managedOn(e2e.List(t, docker, state.StateID(c.stateDir)), e2e.Name("rbuild"))); n != 0 {
		t.Fatalf("%d containers of rbuild on the machine's daemon, want 0", n)
	}
	seen := map[string]bool{}
	for range 20 {
		seen[unquote(c.ok(with(flags, "call", e2e.Name("rbuild"), "replica")...).stdout)] = true
	}
	if !seen["0"] || !seen["1"] {
		t.Errorf("calls reached replicas %v, want 0 and 1", seen)
	}

	c.ok(with(flags, "down", e2e.Name("rbuild"))...)
	if left := managedOn(d.Containers(t), e2e.Name("rbuild")); len(left) != 0 {
		t.Fatalf("%d containers of rbuild left on the second daemon after down", len(left))
	}
}

// TestE2ESSHTransfer: a second daemon without the image. `up --no-transfer` refuses (exit 3) saying what
// to do; `up` streams the image from the machine's daemon over SSH (progress on stderr), the replica
// answers, a second `up` sends nothing, and `down` removes the container from that daemon.
func TestE2ESSHTransfer(t *testing.T) {
	noUserSSH(t)
	d := dockerd.Start(t)
	s := sshd.Start(t)
	c := newCLI(t, e2e.StateDir(t))
	image := e2e.Image(t, "actor")
	flags := sshFlags(knownHostsFor(t, s), s)
	spec := s.Target(d.Socket)
	if d.HasImage(t, image) {
		t.Fatalf("the new daemon already has %s", image)
	}

	r := c.fails(ExitNotFound, with(flags, "up", image, "--name", e2e.Name("xfer"), "--host", spec, "--no-transfer")...)
	for _, want := range []string{image, canonical(t, spec), "drop --no-transfer", "rfenv build --host " + canonical(t, spec)} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("up --no-transfer: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if d.HasImage(t, image) || len(d.Containers(t)) != 0 {
		t.Fatalf("up --no-transfer sent the image or started something")
	}

	// Progress on stderr even when it is not a terminal (a transfer can take minutes in CI too).
	r = c.ok(with(flags, "up", image, "--name", e2e.Name("xfer"), "--host", spec, "--json")...)
	for _, want := range []string{image + " is not on " + canonical(t, spec), "sent " + image + " to " + canonical(t, spec)} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("transfer progress on stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stdout, "sent ") {
		t.Errorf("transfer progress went to stdout:\n%s", r.stdout)
	}
	up := decodeJSON[envView](t, r.stdout)
	if len(up.Instances) != 1 || up.Instances[0].Host != canonical(t, spec) {
		t.Fatalf("up --json = %+v", up)
	}
	if !d.HasImage(t, image) {
		t.Fatalf("%s is not on the second daemon after up", image)
	}
	if n := len(managedOn(d.Containers(t), e2e.Name("xfer"))); n != 1 {
		t.Fatalf("%d containers of xfer on the second daemon, want 1", n)
	}
	if got := unquote(c.ok(with(flags, "call", e2e.Name("xfer"), "add", "--arg", "a=1", "--arg", "b=2")...).stdout); got != "3" {
		t.Fatalf("add = %q", got)
	}

	// The image is there now: nothing is sent again, and the replica is reused.
	r = c.ok(with(flags, "up", image, "--name", e2e.Name("xfer"), "--host", spec, "--json")...)
	if strings.Contains(r.stderr, "sent ") || strings.Contains(r.stderr, "sending ") {
		t.Errorf("the image was sent again:\n%s", r.stderr)
	}
	if again := decodeJSON[envView](t, r.stdout); len(again.Instances) != 1 || again.Instances[0].ID != up.Instances[0].ID {
		t.Errorf("up again replaced the replica: %+v", again.Instances)
	}

	c.ok(with(flags, "down", e2e.Name("xfer"))...)
	if left := managedOn(d.Containers(t), e2e.Name("xfer")); len(left) != 0 {
		t.Fatalf("%d containers of xfer left on the second daemon after down", len(left))
	}
}

// TestE2ESSHUnreachableHost: one host of three cannot be reached (nothing listens on its port), or
// reached but its Docker socket is missing: `up` fails with exit 4 naming that host, and nothing is
// left on the hosts that were reachable, nor in the state file.
func TestE2ESSHUnreachableHost(t *testing.T) {
	noUserSSH(t)
	s := sshd.Start(t)
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	docker := e2e.Docker(t)
	flags := sshFlags(knownHostsFor(t, s), s)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "ssh://root@" + l.Addr().String()
	l.Close() // nothing listens there now

	noSocket := s.Target("/run/rfenv-test-no-such-docker.sock")
	for _, bad := range []string{closed, noSocket} {
		logins := strings.Count(s.Log(), "Accepted publickey")
		r := c.fails(ExitInfra, with(flags, "up", e2e.Image(t, "actor"), "--name", e2e.Name("unreach"), "--replicas", "3",
			"--host", "localhost", "--host", s.Target(""), "--host", bad)...)
		if !strings.Contains(r.stderr, canonical(t, bad)) {
			t.Errorf("the error does not name the host %s:\n%s", canonical(t, bad), r.stderr)
		}
		if left := e2e.List(t, docker, state.StateID(dir)); len(left) != 0 {
			t.Errorf("%d containers left on the reachable hosts after a failed up", len(left))
		}
		if ls := decodeJSON[[]envView](t, c.ok("ls", "--json").stdout); len(ls) != 0 {
			t.Errorf("ls after a failed up = %+v", ls)
		}
		// Two specs naming one server (sockets aside) share one SSH connection.
		if bad != noSocket {
			continue
		}
		e2e.Eventually(t, 5*time.Second, "sshd to log the login", func() bool {
			return strings.Count(s.Log(), "Accepted publickey") > logins
		})
		if n := strings.Count(s.Log(), "Accepted publickey") - logins; n != 1 {
			t.Errorf("up logged in %d times to the server behind %s and %s, want once", n, s.Target(""), bad)
		}
	}
}

// TestE2ESSHBuildEachHost: `rfenv build --host localhost --host ssh://…/second.sock` builds the tag on
// both daemons, as two builds with two image IDs; `up` over both hosts runs each replica from its own
// daemon's build. Then a tag whose build on the second daemon cannot start (its Actor raises): `up`
// over both fails (exit 4) naming that replica and host, and removes the replica it had started on
// the machine's daemon; nothing is recorded.
func TestE2ESSHBuildEachHost(t *testing.T) {
	noUserSSH(t)
	d := dockerd.Start(t)
	d.LoadImage(t, dockertest.BaseImage())
	s := sshd.Start(t)
	dir := e2e.StateDir(t)
	c := newCLI(t, dir)
	docker := e2e.Docker(t)
	flags := sshFlags(knownHostsFor(t, s), s)
	remote := s.Target(d.Socket)
	tag := "rfenv-test-each-host-" + strconv.Itoa(os.Getpid()) + ":latest"
	t.Cleanup(func() {
		for _, ref := range []string{tag, strings.TrimSuffix(tag, ":latest") + ":latest-base"} {
			docker.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		}
	})
	hostArgs := []string{"--host", "localhost", "--host", remote}

	built := decodeJSON[[]struct {
		Host    string `json:"host"`
		ImageID string `json:"image_id"`
	}](t, c.ok(with(flags, append([]string{"build", e2e.EnvDir(t, "actor"), "-t", tag,
		"--base-image", dockertest.BaseImage(), "--json"}, hostArgs...)...)...).stdout)
	if len(built) != 2 || built[0].Host != "localhost" || built[1].Host != canonical(t, remote) {
		t.Fatalf("build --json = %+v, want one build per host", built)
	}
	if built[0].ImageID == built[1].ImageID {
		t.Fatalf("both builds made image %s: this test needs two different images of one tag", built[0].ImageID)
	}

	up := decodeJSON[envView](t, c.ok(with(flags, append([]string{"up", tag, "--name", e2e.Name("each"), "--replicas", "2",
		"--no-transfer", "--lb", "round_robin", "--json"}, hostArgs...)...)...).stdout)
	if len(up.Instances) != 2 || up.Instances[0].Host != "localhost" || up.Instances[1].Host != canonical(t, remote) {
		t.Fatalf("up --json = %+v", up)
	}
	local := managedOn(e2e.List(t, docker, state.StateID(dir)), e2e.Name("each"))
	far := managedOn(d.Containers(t), e2e.Name("each"))
	if len(local) != 1 || len(far) != 1 || local[0].ImageID != built[0].ImageID || far[0].ImageID != built[1].ImageID {
		t.Fatalf("replicas: %d on the machine's daemon, %d on the second; want one each, from that daemon's build", len(local), len(far))
	}
	seen := map[string]int{}
	for range 4 {
		seen[unquote(c.ok(with(flags, "call", e2e.Name("each"), "replica")...).stdout)]++
	}
	if seen["0"] != 2 || seen["1"] != 2 {
		t.Errorf("round-robin calls reached %v, want 2 on each replica", seen)
	}
	// Unchanged builds: up again keeps both.
	again := decodeJSON[envView](t, c.ok(with(flags, append([]string{"up", tag, "--name", e2e.Name("each"), "--replicas", "2",
		"--no-transfer", "--lb", "round_robin", "--json"}, hostArgs...)...)...).stdout)
	if len(again.Instances) != 2 || again.Instances[0].ID != up.Instances[0].ID || again.Instances[1].ID != up.Instances[1].ID {
		t.Errorf("up again replaced replicas: %+v → %+v", up.Instances, again.Instances)
	}
	c.ok(with(flags, "down", e2e.Name("each"))...)
	if n := len(managedOn(e2e.List(t, docker, state.StateID(dir)), e2e.Name("each"))) + len(managedOn(d.Containers(t), e2e.Name("each"))); n != 0 {
		t.Fatalf("%d containers left after down", n)
	}

	// The second daemon's build of the tag is broken: its replica fails, the other one is removed.
	c.ok(with(flags, "build", e2e.EnvDir(t, "badctor"), "-t", tag, "--host", remote, "--base-image", dockertest.BaseImage())...)
	r := c.fails(ExitInfra, with(flags, append([]string{"up", tag, "--name", e2e.Name("each"), "--replicas", "2",
		"--no-transfer", "--ready-timeout", "60s"}, hostArgs...)...)...)
	for _, want := range []string{e2e.Name("each") + "-1", canonical(t, remote), "CHUTES_API_KEY not set"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("up with a broken replica: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if n := len(e2e.List(t, docker, state.StateID(dir))); n != 0 {
		t.Errorf("%d containers left on the machine's daemon after the failed up", n)
	}
	if n := len(managedOn(d.Containers(t), e2e.Name("each"))); n != 0 {
		t.Errorf("%d containers left on the second daemon after the failed up", n)
	}
	if ls := decodeJSON[[]envView](t, c.ok("ls", "--json").stdout); len(ls) != 0 {
		t.Errorf("ls after the failed up = %+v", ls)
	}
}
