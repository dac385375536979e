package cmd

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/rfenv/rfenv/pkg/batch"
	"github.com/rfenv/rfenv/pkg/errs"
)

func runBatch(ctx context.Context, f *Factory, o *CallOptions, timeout time.Duration) error {
	if o.Conc < 1 {
		return errs.New(errs.Usage, "--concurrency %d: need at least 1", o.Conc)
	}
	var in io.Reader = f.IO.In
	if o.Batch != "-" {
		fh, err := os.Open(o.Batch)
		if err != nil {
			return errs.New(errs.Usage, "--batch: %v", err)
		}
		defer fh.Close()
		in = fh
	}
	env, err := f.Env(ctx, o.Name, o.EnvOptions()...)
	if err != nil {
		return err
	}
	defer env.Release()
	opts := batch.Options{Method: o.Method, Concurrency: o.Conc, Timeout: timeout}
	if f.IO.IsStderrTTY() && !f.Quiet {
		bar := progressbar.NewOptions(-1,
			progressbar.OptionSetWriter(f.IO.ErrOut),
			progressbar.OptionSetDescription(o.Name+"."+o.Method),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("calls"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionEnableColorCodes(f.IO.ErrColorEnabled()),
		)
		opts.Total = func(n int) { bar.ChangeMax(n) }
		opts.Progress = func(done, failed int) { bar.Set(done) }
		defer bar.Finish()
	}
	sum, err := batch.Run(ctx, env, in, f.IO.Out, opts)
	if err != nil {
		return err
	}
	if sum.Failed > 0 {
		f.Printer().Warn("%d of %d calls failed", sum.Failed, sum.Total)
		return quietError{sum.FirstError}
	}
	f.Printer().Success("%d calls succeeded", sum.Total)
	return nil
}

// quietError carries an exit code whose message was already shown (per line, on stdout).
type quietError struct{ err error }

func (e quietError) Error() string { return e.err.Error() }
func (e quietError) Unwrap() error { return e.err }
