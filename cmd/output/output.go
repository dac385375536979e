// Package output renders what commands print: tables styled with lipgloss on a terminal and
// tab-separated when piped, JSON indented on a terminal and one line otherwise, and status messages
// on stderr that --quiet silences.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/muesli/termenv"

	"github.com/rfenv/rfenv/cmd/iostreams"
)

// Printer writes a command's output.
type Printer struct {
	IO    *iostreams.IOStreams
	Quiet bool
	out   *lipgloss.Renderer
	err   *lipgloss.Renderer
}

// New returns a Printer for the streams.
func New(ios *iostreams.IOStreams, quiet bool) *Printer {
	p := &Printer{IO: ios, Quiet: quiet}
	p.out = renderer(ios.Out, ios.ColorEnabled())
	p.err = renderer(ios.ErrOut, ios.ErrColorEnabled())
	return p
}

func renderer(w io.Writer, color bool) *lipgloss.Renderer {
	r := lipgloss.NewRenderer(w)
	if color {
		r.SetColorProfile(termenv.ANSI256)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	return r
}

// Palette.
var (
	green  = lipgloss.Color("42")
	red    = lipgloss.Color("196")
	yellow = lipgloss.Color("214")
	grey   = lipgloss.Color("245")
	cyan   = lipgloss.Color("39")
)

// JSON writes v as JSON to stdout: indented on a terminal, one line otherwise.
func (p *Printer) JSON(v any) error {
	var data []byte
	var err error
	if raw, ok := v.(json.RawMessage); ok {
		data, err = p.rawJSON(raw)
	} else if p.IO.IsStdoutTTY() {
		data, err = json.MarshalIndent(v, "", "  ")
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	data = append(data, '\n')
	_, err = p.IO.Out.Write(data)
	return err
}

func (p *Printer) rawJSON(raw json.RawMessage) ([]byte, error) {
	var buf bytes.Buffer
	if p.IO.IsStdoutTTY() {
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return nil, err
		}
	} else if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Table writes rows under headers to stdout: a styled table on a terminal, tab-separated values
// (headers included, upper-case) otherwise, so that scripts can cut and awk it.
func (p *Printer) Table(headers []string, rows [][]string) error {
	if !p.IO.IsStdoutTTY() {
		var b strings.Builder
		b.WriteString(strings.ToUpper(strings.Join(headers, "\t")) + "\n")
		for _, r := range rows {
			b.WriteString(strings.Join(sanitizeTSV(r), "\t") + "\n")
		}
		_, err := io.WriteString(p.IO.Out, b.String())
		return err
	}
	head := p.out.NewStyle().Bold(true).Foreground(cyan).Padding(0, 1)
	cell := p.out.NewStyle().Padding(0, 1)
	t := table.New().
		Border(lipgloss.HiddenBorder()).
		BorderTop(false).BorderBottom(false).BorderLeft(false).BorderRight(false).
		BorderHeader(false).BorderColumn(false).
		Headers(upper(headers)...).Rows(rows...).
		StyleFunc(func(row, col int) lipgloss.Style {
			if row == table.HeaderRow {
				return head
			}
			return cell
		})
	_, err := fmt.Fprintln(p.IO.Out, strings.TrimRight(t.String(), "\n"))
	return err
}

func upper(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToUpper(v)
	}
	return out
}

func sanitizeTSV(r []string) []string {
	out := make([]string, len(r))
	for i, v := range r {
		out[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(v)
	}
	return out
}

// Success prints a status line with a check mark to stderr, unless quiet.
func (p *Printer) Success(format string, args ...any) {
	p.status(p.err.NewStyle().Foreground(green).Render("✓"), format, args...)
}

// Info prints a neutral status line to stderr, unless quiet.
func (p *Printer) Info(format string, args ...any) {
	p.status(p.err.NewStyle().Foreground(grey).Render("•"), format, args...)
}

// Warn prints a warning to stderr, even when quiet: warnings are not decoration.
func (p *Printer) Warn(format string, args ...any) {
	mark := p.err.NewStyle().Foreground(yellow).Render("!")
	fmt.Fprintf(p.IO.ErrOut, "%s %s\n", mark, fmt.Sprintf(format, args...))
}

// Error formats an error message for stderr.
func (p *Printer) Error(msg string) {
	mark := p.err.NewStyle().Foreground(red).Bold(true).Render("error:")
	fmt.Fprintf(p.IO.ErrOut, "%s %s\n", mark, msg)
}

func (p *Printer) status(mark, format string, args ...any) {
	if p.Quiet {
		return
	}
	fmt.Fprintf(p.IO.ErrOut, "%s %s\n", mark, fmt.Sprintf(format, args...))
}

// Good colours text green on stdout when colour is on (e.g. a healthy count).
func (p *Printer) Good(s string) string { return p.out.NewStyle().Foreground(green).Render(s) }

// Bad colours text red on stdout when colour is on.
func (p *Printer) Bad(s string) string { return p.out.NewStyle().Foreground(red).Render(s) }

// Dim greys text on stdout when colour is on.
func (p *Printer) Dim(s string) string { return p.out.NewStyle().Foreground(grey).Render(s) }
