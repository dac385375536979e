// Package iostreams carries a command's standard streams and what they are connected to, so that
// every command can be run, and tested, with and without a terminal.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are the streams a command reads and writes. Data goes to Out, progress and decoration to
// ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdoutTTY bool
	stderrTTY bool
	stdinTTY  bool
	color     bool
	errColor  bool
	width     int
}

// System returns the process's own streams, detecting terminals and colour the way users expect:
// NO_COLOR disables colour, CLICOLOR_FORCE forces it, TERM=dumb disables it.
func System() *IOStreams {
	s := &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	s.stdoutTTY = isTerminal(os.Stdout)
	s.stderrTTY = isTerminal(os.Stderr)
	s.stdinTTY = isTerminal(os.Stdin)
	s.color = ColorEnabled(s.stdoutTTY, os.Getenv)
	s.errColor = ColorEnabled(s.stderrTTY, os.Getenv)
	if s.stdoutTTY {
		if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			s.width = w
		}
	}
	return s
}

// ColorEnabled decides colour for a stream from its terminal-ness and the environment.
func ColorEnabled(tty bool, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" {
		return false
	}
	if v := getenv("CLICOLOR_FORCE"); v != "" && v != "0" {
		return true
	}
	if getenv("TERM") == "dumb" {
		return false
	}
	return tty
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Test returns streams backed by buffers, all non-terminals unless changed with SetTTY.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, width: 100}, in, out, errOut
}

// SetTTY marks stdout and stderr as terminals (or not), and colour with them; for tests.
func (s *IOStreams) SetTTY(tty bool) {
	s.stdoutTTY, s.stderrTTY = tty, tty
}

// SetColor turns colour on or off; for tests.
func (s *IOStreams) SetColor(on bool) { s.color, s.errColor = on, on }

// IsStdoutTTY reports whether data goes to a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether progress goes to a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// IsStdinTTY reports whether input comes from a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// ColorEnabled reports whether stdout may be coloured.
func (s *IOStreams) ColorEnabled() bool { return s.color }

// ErrColorEnabled reports whether stderr may be coloured.
func (s *IOStreams) ErrColorEnabled() bool { return s.errColor }

// Width is the terminal's width, or 0 when unknown.
func (s *IOStreams) Width() int { return s.width }
