// Package output renders what commands print: tables styled with lipgloss on a terminal and
// tab-separated when piped, and, through cmd/output/plain, JSON indented on a terminal and one line
// otherwise and status messages on stderr that --quiet silences.
package output

import (
	"fmt"
	"io"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/muesli/termenv"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/cmd/output/plain"
)

// Printer writes a command's output.
type Printer struct {
	IO    *iostreams.IOStreams
	Quiet bool
	out   *lipgloss.Renderer
}

// New returns a Printer for the streams.
func New(ios *iostreams.IOStreams, quiet bool) *Printer {
	p := &Printer{IO: ios, Quiet: quiet}
	p.out = renderer(ios.Out, ios.ColorEnabled())
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

// Palette (the same colours as plain's status lines).
var (
	red   = lipgloss.Color(plain.Red)
	green = lipgloss.Color(plain.Green)
	grey  = lipgloss.Color(plain.Grey)
	cyan  = lipgloss.Color(plain.Cyan)
)

// JSON writes v as JSON to stdout: indented on a terminal, one line otherwise.
func (p *Printer) JSON(v any) error { return plain.JSON(p.IO, v) }

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
func (p *Printer) Success(format string, args ...any) { plain.Success(p.IO, p.Quiet, format, args...) }

// Info prints a neutral status line to stderr, unless quiet.
func (p *Printer) Info(format string, args ...any) { plain.Info(p.IO, p.Quiet, format, args...) }

// Warn prints a warning to stderr, even when quiet: warnings are not decoration.
func (p *Printer) Warn(format string, args ...any) { plain.Warn(p.IO, format, args...) }

// Error formats an error message for stderr.
func (p *Printer) Error(msg string) { plain.Error(p.IO, msg) }

// Good colours text green on stdout when colour is on (e.g. a healthy count).
func (p *Printer) Good(s string) string { return p.out.NewStyle().Foreground(green).Render(s) }

// Bad colours text red on stdout when colour is on.
func (p *Printer) Bad(s string) string { return p.out.NewStyle().Foreground(red).Render(s) }

// Dim greys text on stdout when colour is on.
func (p *Printer) Dim(s string) string { return p.out.NewStyle().Foreground(grey).Render(s) }
