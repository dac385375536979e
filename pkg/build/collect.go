package build

import (
	"strings"

	bkclient "github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

const (
	logTailBytes = 16 << 10 // per step, kept while the build runs
	logTailLines = 20       // in the error message
)

// collector keeps what an error message needs from BuildKit's status stream: each step's name, its
// error, and the tail of its output. It is fed by a single goroutine.
type collector struct {
	names  map[digest.Digest]string
	errs   map[digest.Digest]string
	failed []digest.Digest // in the order their errors arrived
	logs   map[digest.Digest][]byte
}

func newCollector() *collector {
	return &collector{
		names: map[digest.Digest]string{},
		errs:  map[digest.Digest]string{},
		logs:  map[digest.Digest][]byte{},
	}
}

func (c *collector) add(s *bkclient.SolveStatus) {
	for _, v := range s.Vertexes {
		if v.Name != "" {
			c.names[v.Digest] = v.Name
		}
		if v.Error != "" {
			if _, seen := c.errs[v.Digest]; !seen {
				c.failed = append(c.failed, v.Digest)
			}
			c.errs[v.Digest] = v.Error
		}
	}
	for _, l := range s.Logs {
		buf := append(c.logs[l.Vertex], l.Data...)
		if len(buf) > 2*logTailBytes {
			buf = append([]byte(nil), buf[len(buf)-logTailBytes:]...)
		}
		c.logs[l.Vertex] = buf
	}
}

// failure returns the step that failed, preferring a real failure over steps cancelled because
// another one failed; nil when no step reported an error.
func (c *collector) failure() *StepError {
	var pick digest.Digest
	for _, d := range c.failed {
		if pick == "" {
			pick = d
		}
		if !isCancellation(c.errs[d]) {
			pick = d
			break
		}
	}
	if pick == "" {
		return nil
	}
	name := c.names[pick]
	if name == "" {
		name = string(pick)
	}
	return &StepError{Step: name, Err: c.errs[pick], Log: tailLines(c.logs[pick], logTailLines)}
}

func isCancellation(msg string) bool {
	return strings.Contains(msg, "context canceled") || strings.Contains(msg, "canceled:")
}

// tailLines returns the last n non-empty lines of a step's output. Carriage returns (progress bars)
// count as line ends; ANSI colour sequences are left as they are.
func tailLines(b []byte, n int) []string {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, " \t"); l != "" {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
