// Package plain writes what every command prints without a styling library: a JSON result
// (indented on a terminal, one line otherwise) and the status lines on stderr ("✓", "•", "!",
// "error:"), coloured with ANSI 256-colour codes only when the stream is a terminal that wants
// colour. cmd/output's Printer writes these through it; the lean front (cmd/front) uses it alone,
// so a call prints the same bytes whichever binary ran it.
package plain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/rfenv/rfenv/cmd/iostreams"
)

// Colours of the palette, as ANSI 256-colour numbers.
const (
	Green  = "42"
	Red    = "196"
	Yellow = "214"
	Grey   = "245"
	Cyan   = "39"
)

// Paint renders s in colour (bold if asked) when on, else returns s unchanged.
func Paint(s, colour string, bold, on bool) string {
	if !on || s == "" {
		return s
	}
	sgr := "38;5;" + colour
	if bold {
		sgr = "1;" + sgr
	}
	return "\x1b[" + sgr + "m" + s + "\x1b[0m"
}

// JSON writes v as JSON to stdout: indented on a terminal, one line otherwise. A json.RawMessage is
// reformatted, not re-encoded.
func JSON(ios *iostreams.IOStreams, v any) error {
	var data []byte
	var err error
	if raw, ok := v.(json.RawMessage); ok {
		var buf bytes.Buffer
		if ios.IsStdoutTTY() {
			err = json.Indent(&buf, raw, "", "  ")
		} else {
			err = json.Compact(&buf, raw)
		}
		data = buf.Bytes()
	} else if ios.IsStdoutTTY() {
		data, err = json.MarshalIndent(v, "", "  ")
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	_, err = ios.Out.Write(append(data, '\n'))
	return err
}

// Error writes an error message to stderr.
func Error(ios *iostreams.IOStreams, msg string) {
	line(ios.ErrOut, Paint("error:", Red, true, ios.ErrColorEnabled()), msg)
}

// Warn writes a warning to stderr, even when quiet: warnings are not decoration.
func Warn(ios *iostreams.IOStreams, format string, args ...any) {
	line(ios.ErrOut, Paint("!", Yellow, false, ios.ErrColorEnabled()), fmt.Sprintf(format, args...))
}

// Info writes a neutral status line to stderr, unless quiet.
func Info(ios *iostreams.IOStreams, quiet bool, format string, args ...any) {
	if !quiet {
		line(ios.ErrOut, Paint("•", Grey, false, ios.ErrColorEnabled()), fmt.Sprintf(format, args...))
	}
}

// Success writes a status line with a check mark to stderr, unless quiet.
func Success(ios *iostreams.IOStreams, quiet bool, format string, args ...any) {
	if !quiet {
		line(ios.ErrOut, Paint("✓", Green, false, ios.ErrColorEnabled()), fmt.Sprintf(format, args...))
	}
}

func line(w io.Writer, mark, msg string) { fmt.Fprintf(w, "%s %s\n", mark, msg) }
