package docker

import (
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/state"
)

// Explain implements backend.Backend: what Docker knows of the replica's container (killed for
// running out of memory, exited, removed). It costs one container inspection, made only after a
// failure.
func (c *Backend) Explain(ctx context.Context, rec *state.Environment, replica int, afterCall bool) string {
	for _, in := range rec.Instances {
		if in.Index == replica {
			return c.containerProblem(ctx, in, afterCall)
		}
	}
	return ""
}

// containerProblem inspects a replica's container and describes what is wrong with it, or "" when it
// runs normally (or cannot be inspected). afterCall says a call just broke on it, so an OOM kill
// that the restart policy already recovered from is still reported.
func (c *Backend) containerProblem(ctx context.Context, in state.Instance, afterCall bool) string {
	if in.ContainerID == "" || in.URL != "" {
		return ""
	}
	sp, err := host.Parse(in.Host)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	conn, err := c.conn(ctx, sp)
	if err != nil {
		return ""
	}
	var res client.ContainerInspectResult
	// Right after a call broke, the daemon may not have processed the container's exit yet: give
	// it a moment to show, polling. A loaded machine's daemon can take seconds to record an OOM
	// kill, so the wait is generous; it is paid only on this failure path, in full only by a
	// container that is in fact healthy.
	for deadline := time.Now().Add(5 * time.Second); ; {
		res, err = conn.Docker.ContainerInspect(ctx, in.ContainerID, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return fmt.Sprintf("replica %d's container %s is gone from %s (removed outside rfenv); `rfenv up` replaces it", in.Index, in.ContainerName, in.Host)
		}
		if err != nil || res.Container.State == nil {
			return ""
		}
		st := res.Container.State
		if !afterCall || st.OOMKilled || st.Restarting || !st.Running || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := res.Container.State
	limit := ""
	if hc := res.Container.HostConfig; hc != nil && hc.Memory > 0 {
		limit = " of " + units.BytesSize(float64(hc.Memory))
	}
	switch {
	case st.OOMKilled && (afterCall || !st.Running):
		restarted := ""
		if st.Running || st.Restarting {
			restarted = "; Docker restarted it"
		}
		return fmt.Sprintf("replica %d's container %s was killed for running out of memory (its limit%s was exceeded)%s; give replicas more with `rfenv up --memory`, or make the method use less", in.Index, in.ContainerName, limit, restarted)
	case st.Restarting:
		return fmt.Sprintf("replica %d's container %s is restarting after exiting with code %d%s", in.Index, in.ContainerName, st.ExitCode, signalHint(st.ExitCode))
	case !st.Running:
		return fmt.Sprintf("replica %d's container %s is not running (%s, exit code %d%s); `rfenv up` replaces it", in.Index, in.ContainerName, st.Status, st.ExitCode, signalHint(st.ExitCode))
	}
	return ""
}

func signalHint(code int) string {
	switch code {
	case 137:
		return ": killed by SIGKILL"
	case 143:
		return ": stopped by SIGTERM"
	}
	return ""
}
