package cmd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// Process-level tests run the real rfenv binary, so that signals, exit codes and concurrent
// processes are what a user gets. The binary is built once per test binary.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// rfenvBinary builds github.com/rfenv/rfenv as released, the lean front (tag rfenvlean) and the full
// binary beside it, into a directory of this test process (removed by the next test binary that
// finds its owner gone), and returns the front's path: every process test goes through the front,
// and every command it hands off through the full binary.
func rfenvBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		removeStaleBinDirs()
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("rfenv-e2e-bin-%d", os.Getpid()))
		if binErr = os.MkdirAll(dir, 0o755); binErr != nil {
			return
		}
		binPath = filepath.Join(dir, "rfenv")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		for _, b := range [][]string{
			{"-o", filepath.Join(dir, protocol.FullBinaryName)},
			{"-tags", "rfenvlean", "-o", binPath},
		} {
			cmd := exec.CommandContext(ctx, "go", append(append([]string{"build"}, b...), "github.com/rfenv/rfenv")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("go build %v: %v\n%s", b, err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// removeStaleBinDirs deletes binaries built by test processes that no longer run.
func removeStaleBinDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "rfenv-e2e-bin-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "rfenv-e2e-bin-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if p, err := os.FindProcess(pid); err == nil && errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone) {
			os.RemoveAll(d)
		}
	}
}

// procEnv is the environment of rfenv processes: their own state dir and config home, nothing else of
// the user's.
type procEnv struct {
	t        testing.TB
	stateDir string
	cfgHome  string
	extra    []string
	// gid, when not 0, runs rfenv with this group ID alone (the transport test cuts the bridge
	// network off for it with an iptables owner match).
	gid uint32
	// bin, when set, is the binary to run instead of the lean front (rfenvBinary).
	bin string
}

func newProcEnv(t testing.TB, stateDir string) *procEnv {
	return &procEnv{t: t, stateDir: stateDir, cfgHome: t.TempDir()}
}

func (e *procEnv) environ() []string {
	env := []string{
		"RFENV_STATE_DIR=" + e.stateDir,
		"XDG_CONFIG_HOME=" + e.cfgHome,
		"HOME=" + os.Getenv("HOME"),
		"PATH=" + os.Getenv("PATH"),
		"NO_COLOR=1",
		// A loaded CI machine can take more than the default minute to start many replicas at once.
		"RFENV_READY_TIMEOUT=" + testReadyTimeout,
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		env = append(env, "DOCKER_HOST="+h)
	}
	return append(env, e.extra...)
}

// proc is one running rfenv process.
type proc struct {
	cmd            *exec.Cmd
	args           []string
	stdout, stderr *syncBuffer
	started        time.Time
	done           chan struct{}
	res            result
}

// syncBuffer is a bytes.Buffer safe to read while the process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs rfenv with args in the background.
func (e *procEnv) start(stdin string, args ...string) *proc {
	e.t.Helper()
	bin := e.bin
	if bin == "" {
		bin = rfenvBinary(e.t)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = e.environ()
	cmd.Stdin = strings.NewReader(stdin)
	if e.gid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(os.Getuid()), Gid: e.gid, Groups: []uint32{}}}
	}
	p := &proc{cmd: cmd, args: args, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start rfenv %v: %v", args, err)
	}
	go func() {
		err := cmd.Wait()
		p.res = result{stdout: p.stdout.String(), stderr: p.stderr.String(), code: cmd.ProcessState.ExitCode(), elapsed: time.Since(p.started)}
		if err != nil && p.res.code < 0 {
			p.res.code = -1 // killed by a signal it did not handle
		}
		close(p.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// run runs rfenv to completion.
func (e *procEnv) run(args ...string) result {
	e.t.Helper()
	return e.start("", args...).wait(e.t, 3*time.Minute)
}

// signal sends sig to the process.
func (p *proc) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal rfenv %v: %v", p.args, err)
	}
}

// wait waits for the process to exit, killing it (and failing) after timeout.
func (p *proc) wait(t testing.TB, timeout time.Duration) result {
	t.Helper()
	timeout = max(timeout, e2e.Patience)
	select {
	case <-p.done:
		return p.res
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("rfenv %v did not exit within %s\nstdout: %s\nstderr: %s", p.args, timeout, p.res.stdout, p.res.stderr)
		return p.res
	}
}

// exited says whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// uniqueName returns prefix-XXXXXX: container names are global on the daemon, which other test runs
// share, so every hardening test names its environments uniquely.
func uniqueName(prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Helpers the hardening tests share.

// dockerCLI runs the docker command line and returns its trimmed output, failing the test on error.
func dockerCLI(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// readStateFile parses state.json strictly (as rfenv does); a missing file is an empty state.
func readStateFile(t testing.TB, dir string) *state.File {
	t.Helper()
	st, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := st.Load(context.Background())
	if err != nil {
		t.Fatalf("state file does not parse: %v", err)
	}
	return f
}

// assertNoPorts checks that no container of the state directory publishes a port beyond its host's
// loopback.
func assertNoPorts(t testing.TB, docker *client.Client, dir string) {
	t.Helper()
	var ids []string
	for _, c := range e2e.List(t, docker, state.StateID(dir)) {
		// A container being removed (by a clean-up racing the listing) may be gone already.
		if _, err := docker.ContainerInspect(context.Background(), c.ID, client.ContainerInspectOptions{}); err == nil {
			ids = append(ids, c.ID)
		}
	}
	e2e.AssertLoopbackOnly(t, docker, ids)
}

// assertAccounted checks that every container whose name starts with one of the environments' names
// carries rfenv's labels for this state directory (so `down` and `down --orphans` find it), and that
// every container the state file records exists.
func assertAccounted(t testing.TB, docker *client.Client, dir string, names ...string) {
	t.Helper()
	id := state.StateID(dir)
	f := readStateFile(t, dir)
	for _, name := range names {
		res, err := docker.ContainerList(context.Background(), client.ContainerListOptions{
			All: true, Filters: make(client.Filters).Add("name", "^/"+name+"-[0-9]+$"),
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Items {
			if c.Labels[containers.LabelManaged] != "true" || c.Labels[containers.LabelState] != id || c.Labels[containers.LabelEnv] != name {
				t.Errorf("container %v has neither a state entry nor rfenv's labels: %v", c.Names, c.Labels)
			}
		}
	}
	running := map[string]bool{}
	for _, c := range e2e.List(t, docker, id) {
		running[c.ID] = true
	}
	for _, e := range f.Environments {
		for _, in := range e.Instances {
			if !running[in.ContainerID] {
				t.Errorf("state entry %s lists container %s (%s) that does not exist", e.Name, in.ContainerName, in.ContainerID)
			}
		}
	}
}

// inFlight sums the calls in flight over an environment's replicas, as the servers report them.
func inFlight(t testing.TB, c *cli, name string) int64 {
	t.Helper()
	st := decodeJSON[pool.Stats](t, c.ok("stats", name, "--json").stdout)
	var n int64
	for _, in := range st.Instances {
		n += in.InFlight
	}
	return n
}

// secs formats a duration in seconds for RELIABILITY.md.
func secs(d time.Duration) string {
	if d < time.Millisecond {
		return "<1 ms"
	}
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}
