package backend

import (
	"bytes"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/state"
)

// maxPartialLine bounds how much of an unterminated line is held back to keep prefixed output
// whole; a longer one is written out as a line of its own.
const maxPartialLine = 1 << 20

// SelectReplicas returns the instances with the wanted indices (all of them when want is empty).
func SelectReplicas(rec *state.Environment, want []int) ([]state.Instance, error) {
	if len(want) == 0 {
		return rec.Instances, nil
	}
	var out []state.Instance
	for _, idx := range want {
		i := slices.IndexFunc(rec.Instances, func(in state.Instance) bool { return in.Index == idx })
		if i < 0 {
			have := make([]string, len(rec.Instances))
			for j, in := range rec.Instances {
				have[j] = strconv.Itoa(in.Index)
			}
			return nil, errs.New(errs.NotFound, "environment %s has no replica %d; its replicas are %s (see rfenv stats %s)", rec.Name, idx, strings.Join(have, ", "), rec.Name)
		}
		out = append(out, rec.Instances[i])
	}
	return out, nil
}

// SyncWriter serialises writes from the replicas' goroutines.
type SyncWriter struct {
	mu sync.Mutex
	W  io.Writer
}

func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.W.Write(p)
}

// LineWriter prefixes each line and writes only whole lines, each batch in one Write.
type LineWriter struct {
	Out    io.Writer
	Prefix []byte
	buf    []byte
}

func (l *LineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	end := bytes.LastIndexByte(l.buf, '\n') + 1
	if end == 0 && len(l.buf) < maxPartialLine {
		return len(p), nil
	}
	if end == 0 {
		l.buf = append(l.buf, '\n')
		end = len(l.buf)
	}
	var b bytes.Buffer
	for rest := l.buf[:end]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n') + 1
		b.Write(l.Prefix)
		b.Write(rest[:i])
		rest = rest[i:]
	}
	l.buf = l.buf[:copy(l.buf, l.buf[end:])]
	if _, err := l.Out.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes an unterminated last line, ended with a newline.
func (l *LineWriter) Flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.Write([]byte{'\n'})
	return err
}
