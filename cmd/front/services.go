package front

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/pkg/endpoint"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/running"
	"github.com/rfenv/rfenv/pkg/state"
)

// fullServices is the Docker backend as the front reaches it: the full binary's hidden command
// (protocol.FrontServicesCommand), run with the line's state directory and verbosity, only after
// a call went wrong. A failure to run it leaves the call's error as it is, as a failed Docker
// inspection does in the full binary.
type fullServices struct {
	ios    *iostreams.IOStreams
	getenv func(string) string
	line   callLine
}

var _ running.Follower = fullServices{}

// Explain implements running.Backend.
func (s fullServices) Explain(ctx context.Context, env *state.Environment, replica int, afterCall bool) string {
	args := []string{"explain", env.Name, strconv.Itoa(replica)}
	if afterCall {
		args = append(args, "--after-call")
	}
	out, _ := s.run(ctx, args...)
	return string(out)
}

// Follow implements running.Follower.
func (s fullServices) Follow(ctx context.Context, env *state.Environment, replica int) (state.Instance, bool, error) {
	out, err := s.run(ctx, "follow", env.Name, strconv.Itoa(replica))
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		return state.Instance{}, false, err
	}
	var in state.Instance
	if err := json.Unmarshal(out, &in); err != nil {
		return state.Instance{}, false, err
	}
	return in, true, nil
}

// Endpoints implements running.Follower: the front calls only replicas it can dial directly.
func (s fullServices) Endpoints(env *state.Environment, instances []state.Instance) []pool.Endpoint {
	return endpointsOf(env, instances)
}

func (s fullServices) run(ctx context.Context, args ...string) ([]byte, error) {
	bin, err := fullBinary(s.getenv)
	if err != nil {
		return nil, err
	}
	var argv []string
	if s.line.StateDir != "" {
		argv = append(argv, "--state-dir", s.line.StateDir)
	}
	if s.line.Verbose {
		argv = append(argv, "--verbose")
	}
	c := exec.CommandContext(ctx, bin, append(append(argv, protocol.FrontServicesCommand), args...)...)
	var out bytes.Buffer
	c.Stdout, c.Stderr, c.Env = &out, s.ios.ErrOut, os.Environ()
	err = c.Run()
	return out.Bytes(), err
}

// endpointsOf are instances of env as the front dials them: at their recorded addresses.
func endpointsOf(env *state.Environment, instances []state.Instance) []pool.Endpoint {
	eps := make([]pool.Endpoint, 0, len(instances))
	for _, in := range instances {
		eps = append(eps, endpoint.Of(env, in))
	}
	return eps
}
