package rfenv

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// Explain adds what Docker knows to a call error whose replica was lost mid-call (the connection
// broke before the answer): its container was killed for running out of memory, exited, or was
// removed. Other errors, and errors Docker cannot explain, are returned unchanged. It costs one
// container inspection, made only after such a failure.
func (e *Env) Explain(ctx context.Context, err error) error {
	var lost *pool.ReplicaLostError
	if !errors.As(err, &lost) {
		return err
	}
	for _, in := range e.rec.Instances {
		if in.Index == lost.Replica {
			if why := e.containerProblem(ctx, in, true); why != "" {
				return &explainedError{err: err, why: why}
			}
		}
	}
	return err
}

// explainedError is an error followed by its diagnosis; it keeps the error's kind.
type explainedError struct {
	err error
	why string
}

func (e *explainedError) Error() string { return e.err.Error() + "\n" + e.why }
func (e *explainedError) Unwrap() error { return e.err }

// containerProblem inspects a replica's container and describes what is wrong with it, or "" when it
// runs normally (or cannot be inspected). afterCall says a call just broke on it, so an OOM kill
// that the restart policy already recovered from is still reported.
func (e *Env) containerProblem(ctx context.Context, in state.Instance, afterCall bool) string {
	if in.ContainerID == "" || in.URL != "" {
		return ""
	}
	sp, err := host.Parse(in.Host)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	conn, err := e.c.conn(ctx, sp)
	if err != nil {
		return ""
	}
	var res client.ContainerInspectResult
	// Right after a call broke, the daemon may not have processed the container's exit yet: give
	// it a moment to show, polling (a healthy container costs the full second, on a failure path).
	for deadline := time.Now().Add(time.Second); ; {
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

// statsWithContainers is Stats plus, for each replica that does not answer, what Docker says about
// its container.
func (e *Env) statsWithContainers(ctx context.Context) pool.Stats {
	st := e.pool.Stats(ctx)
	for i := range st.Instances {
		s := &st.Instances[i]
		if s.Healthy || (s.Status != "unreachable" && s.Status != "unauthorized") {
			continue
		}
		for _, in := range e.rec.Instances {
			if in.Index == s.Index {
				if why := e.containerProblem(ctx, in, false); why != "" {
					s.Error = why + " (" + s.Error + ")"
				}
			}
		}
	}
	return st
}
