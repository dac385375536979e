package containers

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/protocol"
)

// SecretsPath is where secret values are copied into a container before it starts; the shim loads them
// into its environment and deletes the file. Values put there never show in `docker inspect`.
const SecretsPath = "/run/rfenv/secrets.json"

// Spec describes one replica's container.
type Spec struct {
	Env        string // environment name; the container is named Env-Index
	Index      int
	Image      string
	Port       int
	Vars       []string          // K=V for the container's environment (secret values: never logged)
	Secrets    map[string]string // delivered through SecretsPath instead of the container config
	Memory     int64             // bytes, 0 = unlimited
	NanoCPUs   int64
	Network    string   // user network to join instead of the default bridge
	Volumes    []string // docker -v syntax: src:dst[:ro]
	GPUs       string   // "", "all" or a count
	Labels     map[string]string
	StateID    string
	ConfigHash string
	// Publish binds Port on the daemon host's 127.0.0.1 (never another address), at a port Docker
	// picks: for hosts whose bridge addresses the client cannot reach.
	Publish bool
}

// Name is the container name of a replica.
func Name(env string, index int) string { return env + "-" + strconv.Itoa(index) }

// Replica is a started container.
type Replica struct {
	ID      string
	Name    string
	Index   int
	Host    string
	Address netip.Addr // the container's address on its network
	Port    int
	// Published is the daemon host's 127.0.0.1 and the port Docker bound Port to (when published).
	Published netip.AddrPort
}

// Create creates (but does not start) the container for spec. A container of the same name that rfenv
// did not create is never touched: that is a Conflict error.
func Create(ctx context.Context, conn *dockerhost.Conn, spec Spec) (string, error) {
	name := Name(spec.Env, spec.Index)
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels[LabelManaged] = "true"
	labels[LabelEnv] = spec.Env
	labels[LabelReplica] = strconv.Itoa(spec.Index)
	labels[LabelConfigHash] = spec.ConfigHash
	labels[LabelState] = spec.StateID

	hc := &container.HostConfig{
		// A crashed server comes back; a container rfenv stops stays stopped.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Resources:     container.Resources{Memory: spec.Memory, NanoCPUs: spec.NanoCPUs},
		Binds:         spec.Volumes,
		// docker-init as PID 1 reaps zombies of processes env.py starts and forwards SIGTERM to the
		// server, which still exits at once.
		Init: &initTrue,
	}
	if spec.GPUs != "" {
		req, err := GPURequest(spec.GPUs)
		if err != nil {
			return "", err
		}
		hc.DeviceRequests = []container.DeviceRequest{req}
	}
	var exposed network.PortSet
	if spec.Publish {
		p := network.MustParsePort(strconv.Itoa(spec.Port) + "/tcp")
		exposed = network.PortSet{p: {}}
		hc.PortBindings = network.PortMap{p: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: ""}}}
	}
	var nc *network.NetworkingConfig
	if spec.Network != "" {
		hc.NetworkMode = container.NetworkMode(spec.Network)
	}
	res, err := conn.Docker.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:        spec.Image,
			Env:          spec.Vars,
			Labels:       labels,
			ExposedPorts: exposed,
		},
		HostConfig:       hc,
		NetworkingConfig: nc,
	})
	if err != nil {
		switch {
		case cerrdefs.IsConflict(err):
			return "", conflictError(ctx, conn, name, spec)
		case cerrdefs.IsNotFound(err):
			return "", errs.New(errs.NotFound, "image %s not found on %s: build it with `rfenv build DIR -t %s`", spec.Image, conn.Spec, spec.Image)
		}
		return "", errs.Wrap(errs.Infra, fmt.Errorf("create %s on %s: %w", name, conn.Spec, err))
	}
	if len(spec.Secrets) > 0 {
		if err := copySecrets(ctx, conn, res.ID, spec.Secrets); err != nil {
			return res.ID, err
		}
	}
	return res.ID, nil
}

var initTrue = true

// conflictError explains a name collision. up plans around every container of the environment that
// carries this state directory's labels, so the one in the way was started by someone else: by hand,
// or by rfenv with another state directory. Neither is rfenv's to remove, so the advice says who can.
func conflictError(ctx context.Context, conn *dockerhost.Conn, name string, spec Spec) error {
	owner := "was not started by rfenv"
	fix := fmt.Sprintf("remove it yourself (docker rm -f %s) if it is not needed", name)
	if res, err := conn.Docker.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err == nil && res.Container.Config != nil {
		labels := res.Container.Config.Labels
		if labels[LabelManaged] == "true" && labels[LabelState] != spec.StateID {
			owner = fmt.Sprintf("belongs to another rfenv state directory (label %s=%s)", LabelState, labels[LabelState])
			fix = "run `rfenv down` with that --state-dir"
		}
	}
	return errs.New(errs.Conflict, "container %s already exists on %s and %s; rfenv leaves it alone: %s, or choose another --name", name, conn.Spec, owner, fix)
}

// GPURequest turns --gpus all|N into a Docker device request, as `docker run --gpus` does.
func GPURequest(v string) (container.DeviceRequest, error) {
	req := container.DeviceRequest{Capabilities: [][]string{{"gpu"}}}
	if v == "all" {
		req.Count = -1
		return req, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return req, errs.New(errs.Usage, "--gpus %q: expected all or a positive count", v)
	}
	req.Count = n
	return req, nil
}

func copySecrets(ctx context.Context, conn *dockerhost.Conn, id string, secrets map[string]string) error {
	body, err := json.Marshal(secrets)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "run/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "run/rfenv/", Typeflag: tar.TypeDir, Mode: 0o700},
	} {
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	// 0400 root: the shim reads it at every start of the container (so a restarted replica has
	// its secrets) and nothing ever writes it again.
	if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(SecretsPath, "/"), Mode: 0o400, Size: int64(len(body))}); err != nil {
		return err
	}
	tw.Write(body)
	tw.Close()
	if _, err := conn.Docker.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf}); err != nil {
		return errs.Wrap(errs.Infra, fmt.Errorf("copy secrets into %s: %w", id[:12], err))
	}
	return nil
}

// Start starts a created container and returns it with its address.
func Start(ctx context.Context, conn *dockerhost.Conn, id string, spec Spec) (Replica, error) {
	if _, err := conn.Docker.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return Replica{}, errs.Wrap(errs.Infra, fmt.Errorf("start %s on %s: %w", Name(spec.Env, spec.Index), conn.Spec, err))
	}
	return Inspect(ctx, conn, id, spec.Network, spec.Port)
}

// Inspect returns a replica's current address and identity.
func Inspect(ctx context.Context, conn *dockerhost.Conn, id, networkName string, port int) (Replica, error) {
	res, err := conn.Docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Replica{}, errs.New(errs.NotFound, "container %s is gone from %s", id, conn.Spec)
		}
		return Replica{}, errs.Wrap(errs.Infra, fmt.Errorf("inspect %s on %s: %w", id, conn.Spec, err))
	}
	c := res.Container
	r := Replica{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), Host: conn.Spec.Raw, Port: port}
	r.Index, _ = strconv.Atoi(c.Config.Labels[LabelReplica])
	r.Address = Address(c, networkName)
	r.Published = PublishedAddr(c, port)
	return r, nil
}

// PublishedAddr is where port is published on the daemon host's loopback, if it is.
func PublishedAddr(c container.InspectResponse, port int) netip.AddrPort {
	if c.NetworkSettings == nil {
		return netip.AddrPort{}
	}
	for _, b := range c.NetworkSettings.Ports[network.MustParsePort(strconv.Itoa(port)+"/tcp")] {
		if n, err := strconv.Atoi(b.HostPort); err == nil && b.HostIP.IsLoopback() {
			return netip.AddrPortFrom(b.HostIP, uint16(n))
		}
	}
	return netip.AddrPort{}
}

// Address picks the container's IP: on the named network if given, else on "bridge", else any.
func Address(c container.InspectResponse, networkName string) netip.Addr {
	if c.NetworkSettings == nil {
		return netip.Addr{}
	}
	nets := c.NetworkSettings.Networks
	if networkName == "" {
		networkName = protocol.DefaultNetwork
	}
	if ep, ok := nets[networkName]; ok && ep != nil && ep.IPAddress.IsValid() {
		return ep.IPAddress
	}
	for _, ep := range nets {
		if ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress
		}
	}
	return netip.Addr{}
}

// Remove stops a container (the shim exits on SIGTERM at once; the grace period only bounds a user
// server that does not) and removes it. A container that is already gone is not an error.
func Remove(ctx context.Context, conn *dockerhost.Conn, id string) error {
	grace := 2
	// A failed stop needs no handling: the forced removal below kills whatever is left.
	_, _ = conn.Docker.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &grace})
	_, err := conn.Docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) && !isRemovalInProgress(err) {
		return errs.Wrap(errs.Infra, fmt.Errorf("remove %s on %s: %w", id, conn.Spec, err))
	}
	return nil
}

func isRemovalInProgress(err error) bool {
	return err != nil && strings.Contains(err.Error(), "is already in progress")
}

// Filter selects rfenv containers by label.
type Filter struct {
	StateID string // "" = any state dir
	Env     string // "" = any environment
}

// List returns rfenv-labelled containers (running or not) matching f.
func List(ctx context.Context, conn *dockerhost.Conn, f Filter) ([]container.Summary, error) {
	filters := make(client.Filters).Add("label", LabelManaged+"=true")
	if f.StateID != "" {
		filters.Add("label", LabelState+"="+f.StateID)
	}
	if f.Env != "" {
		filters.Add("label", LabelEnv+"="+f.Env)
	}
	res, err := conn.Docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		return nil, errs.Wrap(errs.Infra, fmt.Errorf("list containers on %s: %w (is the Docker daemon running?)", conn.Spec, err))
	}
	return res.Items, nil
}

// LogTail returns the last n lines of a container's output, stdout and stderr interleaved.
func LogTail(ctx context.Context, conn *dockerhost.Conn, id string, n int) string {
	rc, err := conn.Docker.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, io.LimitReader(rc, 1<<20)); err != nil && buf.Len() == 0 {
		return ""
	}
	return strings.TrimRight(buf.String(), "\n")
}

// ExitWatch reports the first exit of a container. Arm it before starting the container so that an
// exit right after start is not missed.
type ExitWatch struct {
	result <-chan container.WaitResponse
	errc   <-chan error
	cancel context.CancelFunc
}

// WatchExit arms an ExitWatch on a created container.
func WatchExit(ctx context.Context, conn *dockerhost.Conn, id string) *ExitWatch {
	ctx, cancel := context.WithCancel(ctx)
	res := conn.Docker.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	return &ExitWatch{result: res.Result, errc: res.Error, cancel: cancel}
}

// Exited returns a channel that yields the exit code when the container exits.
func (w *ExitWatch) Exited() <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		select {
		case r, ok := <-w.result:
			if ok {
				out <- r.StatusCode
			}
		case <-w.errc:
		}
	}()
	return out
}

// Stop releases the watch.
func (w *ExitWatch) Stop() { w.cancel() }

// ReadyProbe asks the server in a replica whether it is ready. ready=false with a nil error means
// "not yet"; a non-nil error means it will never be (e.g. the Actor's constructor raised).
type ReadyProbe func(ctx context.Context) (ready bool, err error)

// WaitReady polls probe quickly at first (10 ms, backing off to 100 ms) until it reports ready, the
// container exits (an error with its exit code and last log lines) or ctx ends.
func WaitReady(ctx context.Context, conn *dockerhost.Conn, id, name string, exits <-chan int64, probe ReadyProbe) error {
	delay := 10 * time.Millisecond
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastErr error
	if conn.Spec.Kind != host.Local {
		name += " on " + conn.Spec.String() // which of several hosts it is
	}
	for {
		select {
		case code := <-exits:
			logs := LogTail(context.WithoutCancel(ctx), conn, id, 20)
			return errs.New(errs.Infra, "replica %s exited with code %d before it was ready%s%s", name, code, exitHint(context.WithoutCancel(ctx), conn, id, code), indentLogs(logs))
		case <-ctx.Done():
			cause := context.Cause(ctx)
			logs := LogTail(context.WithoutCancel(ctx), conn, id, 20)
			if errors.Is(cause, context.DeadlineExceeded) {
				detail := ""
				if lastErr != nil {
					detail = " (last probe: " + lastErr.Error() + ")"
				}
				return errs.New(errs.Infra, "replica %s was not ready in time%s; raise --ready-timeout if it needs longer to start%s", name, detail, indentLogs(logs))
			}
			return errs.Wrap(errs.Interrupted, fmt.Errorf("waiting for %s: %w", name, cause))
		case <-timer.C:
		}
		ready, err := probe(ctx)
		if ready {
			return nil
		}
		if err != nil {
			var fatal *FatalProbeError
			if errors.As(err, &fatal) {
				return errs.New(errs.Infra, "replica %s failed to start: %s", name, fatal.Message)
			}
			lastErr = err
		}
		timer.Reset(delay)
		delay = min(delay*3/2, 100*time.Millisecond)
	}
}

// exitHint explains an exit code that has a usual cause.
func exitHint(ctx context.Context, conn *dockerhost.Conn, id string, code int64) string {
	if res, err := conn.Docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err == nil && res.Container.State != nil && res.Container.State.OOMKilled {
		return " (killed: out of memory; raise --memory)"
	}
	switch code {
	case 137:
		return " (killed by SIGKILL, often out of memory; raise --memory)"
	case 127:
		return " (command not found: check the image's CMD)"
	}
	return ""
}

// FatalProbeError says a server will never become ready; Message is what it reported.
type FatalProbeError struct{ Message string }

func (e *FatalProbeError) Error() string { return e.Message }

func indentLogs(logs string) string {
	if logs == "" {
		return ""
	}
	return "; last log lines:\n    " + strings.ReplaceAll(logs, "\n", "\n    ")
}
