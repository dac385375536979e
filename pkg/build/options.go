package build

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Options says what to build.
type Options struct {
	Dir       string            // the environment directory (holds env.py)
	Tag       string            // the final image's tag, e.g. "affine:latest" ("affine" means "affine:latest")
	Type      Kind              // "" detects it from env.py
	BaseImage string            // FROM of the generated Dockerfile ("" = DefaultBaseImage); unused with the directory's own Dockerfile
	BuildArgs map[string]string // --build-arg values for stage 1
	NoCache   bool              // rebuild every step of stage 1
	Labels    map[string]string // extra labels on the image, e.g. a git source's commit (GitCheckout.Labels)
	// Progress receives BuildKit's progress display (nil discards it).
	Progress io.Writer
	// ProgressMode is "auto" (the default: a live display on a terminal, else plain), "plain",
	// "quiet" or "rawjson" (one JSON status per line), or "tty" (fails unless Progress is a terminal).
	ProgressMode string
	Logger       *slog.Logger // nil discards
}

// Result describes the built image.
type Result struct {
	Image    string // the final tag, e.g. "affine:latest"
	ImageID  string // its ID ("sha256:...")
	Kind     Kind
	Port     int           // the port the server listens on inside the container
	Duration time.Duration // the whole build
	// BaseImage is the stage-1 tag (TAG-base) when a second stage was built on top of it: always for
	// the function kind, and for the http kind with the directory's own Dockerfile. Else "".
	BaseImage string
}

// StepError is a failed build step: the step's name as BuildKit shows it, its error and the last
// lines of its output, so that the message is useful even when the progress display was off.
type StepError struct {
	Image string   // the image being built
	Step  string   // e.g. "[3/4] RUN pip install --no-cache-dir -r requirements.txt"
	Err   string   // BuildKit's error for the step, e.g. "... exit code: 1"
	Log   []string // the last lines the step printed
	Hint  string   // what to do
	cause error
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "building %s: step %q failed: %s", e.Image, e.Step, e.Err)
	if len(e.Log) > 0 {
		b.WriteString("\nits last output lines:")
		for _, l := range e.Log {
			b.WriteString("\n  ")
			b.WriteString(l)
		}
	}
	if e.Hint != "" {
		b.WriteString("\n")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.cause }
