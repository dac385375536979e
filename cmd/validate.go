package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/pkg/callargs"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/validate"
)

// ValidateOptions are `rfenv validate`'s inputs.
type ValidateOptions struct {
	Name        string
	Method      string
	Vary        []string
	Arg         []string
	ArgStr      []string
	Field       string
	Output      string
	Repeats     int
	Concurrency int
	Timeout     string
	JSON        bool
}

// validateFailed is a run that found inputs that were not consistent; ExitCode maps it to 7.
type validateFailed struct{ s validate.Summary }

func (e *validateFailed) Error() string {
	return fmt.Sprintf("%d of %d inputs were not consistent (%d inconsistent, %d failed)", e.s.Inputs-e.s.Consistent, e.s.Inputs, e.s.Inconsistent, e.s.Failed)
}

func newValidateCmd(f *Factory) *cobra.Command {
	o := &ValidateOptions{}
	c := &cobra.Command{
		Use:   "validate NAME METHOD --vary KEY=FROM..TO",
		Short: "Check that a method gives the same output for the same input",
		Long: `Call METHOD of environment NAME for a range of inputs (--vary, plus fixed --arg values), each
input twice, on two different replicas when the environment has several, and report:

  consistency  the same input gave the same output (only the --field path of it, if given)
  diversity    different inputs gave different outputs (distinct outputs / inputs)
  failures     calls that raised or failed

One JSON file per input (its calls, outputs and verdict) and summary.json go to --output DIR. A
progress line is shown on a terminal; --json prints the summary on stdout.

Exit status: 0 when every input was consistent, 7 when some input was inconsistent or failed;
the usual codes otherwise (2 usage, 3 unknown environment, 4 infrastructure).`,
		Example: `  rfenv validate affine generate --vary task_id=1..100 --arg task_type=sat
  rfenv validate affine generate --vary task_id=1..20 --field prompt --output ./check
  rfenv validate calc make_task --vary seed=1..50 --vary level=easy,hard --json`,
		GroupID: groupCalling,
		Args:    exactArgs(2, "an environment name and a method"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name, o.Method = args[0], args[1]
			if o.Output == "" {
				o.Output = "validate-" + safeFileName(o.Name) + "-" + safeFileName(o.Method)
			}
			return runValidate(cmd.Context(), f, o)
		},
	}
	fl := c.Flags()
	fl.StringArrayVar(&o.Vary, "vary", nil, "varied argument KEY=FROM..TO (integers) or KEY=V1,V2,… (repeatable: the cross product)")
	fl.StringArrayVarP(&o.Arg, "arg", "a", nil, "fixed keyword argument k=v, v parsed as JSON if it can be (repeatable)")
	fl.StringArrayVar(&o.ArgStr, "arg-str", nil, "fixed keyword argument k=v, v always a string (repeatable)")
	fl.StringVar(&o.Field, "field", "", "compare only this field of the output, a dot path such as prompt or task.text")
	fl.StringVarP(&o.Output, "output", "o", "", "directory for the per-input files and summary.json (default ./validate-NAME-METHOD)")
	fl.IntVar(&o.Repeats, "repeats", 2, "calls per input")
	fl.IntVar(&o.Concurrency, "concurrency", validate.DefaultConcurrency, "inputs checked at once")
	fl.StringVar(&o.Timeout, "timeout", f.Config.String(config.KeyTimeout), "deadline of each call")
	fl.BoolVar(&o.JSON, "json", false, "print the summary as JSON")
	return c
}

func runValidate(ctx context.Context, f *Factory, o *ValidateOptions) error {
	if o.Repeats < 2 {
		return errs.New(errs.Usage, "--repeats %d: a consistency check needs at least 2 calls per input", o.Repeats)
	}
	if o.Concurrency < 1 {
		return errs.New(errs.Usage, "--concurrency %d: must be at least 1", o.Concurrency)
	}
	timeout, err := config.ParseDuration(o.Timeout)
	if err != nil {
		return errs.New(errs.Usage, "--timeout: %v", err)
	}
	inputs, err := validateInputs(o)
	if err != nil {
		return err
	}
	if err := prepareOutput(o.Output); err != nil {
		return err
	}
	client, err := f.Client()
	if err != nil {
		return err
	}
	envs, err := client.GetReplicas(ctx, o.Name, rfenv.WithCallTimeout(timeout))
	if err != nil {
		return err
	}
	defer func() {
		for _, e := range envs {
			e.Release()
		}
	}()
	if err := checkMethod(ctx, envs[0], o.Method); err != nil {
		return err
	}
	p := f.Printer()
	progress := f.IO.IsStderrTTY() && !f.Quiet
	counts := map[string]int{}
	var writeErr error
	start := time.Now()
	results, runErr := validate.Run(ctx, inputs, func(ctx context.Context, rep int, kw map[string]any) (json.RawMessage, error) {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return envs[rep].Call(cctx, o.Method, kw)
	}, validate.RunOptions{
		Field: o.Field, Replicas: len(envs), Repeats: o.Repeats, Concurrency: o.Concurrency,
		OnResult: func(done, total int, r validate.Result) {
			counts[r.Verdict]++
			if err := writeJSONFile(filepath.Join(o.Output, r.Input.FileName()), r); err != nil && writeErr == nil {
				writeErr = err
			}
			if progress {
				fmt.Fprintf(f.IO.ErrOut, "\r\033[Kvalidate %s.%s: %d/%d inputs, %d consistent, %d inconsistent, %d failed",
					o.Name, o.Method, done, total, counts[validate.Consistent], counts[validate.Inconsistent], counts[validate.Failed])
			}
		},
	})
	if progress {
		fmt.Fprintln(f.IO.ErrOut)
	}
	if writeErr != nil {
		return writeErr
	}
	if runErr != nil {
		return errs.Wrap(errs.Interrupted, fmt.Errorf("validate interrupted after %d of %d inputs (their files are in %s): %w", len(results), len(inputs), o.Output, runErr))
	}
	s := validate.Summarize(results)
	s.Environment, s.Method, s.Field, s.Replicas = o.Name, o.Method, o.Field, len(envs)
	s.Started, s.Seconds = start.UTC(), time.Since(start).Seconds()
	if err := writeJSONFile(filepath.Join(o.Output, "summary.json"), s); err != nil {
		return err
	}
	if allCallsFailed(results) {
		// Nothing answered: an environment problem, not a verdict on determinism.
		return fmt.Errorf("every call of %s failed; the first: %s", o.Method, results[0].Reason)
	}
	if o.JSON {
		if err := p.JSON(s); err != nil {
			return err
		}
	} else {
		printSummary(f, o, s)
	}
	if !s.OK {
		return &validateFailed{s: s}
	}
	return nil
}

// checkMethod fails at once for a method the environment does not have, rather than after a
// hundred failed calls. When the list cannot be had, the calls themselves will say why.
func checkMethod(ctx context.Context, env *rfenv.Env, method string) error {
	ms, err := env.Methods(ctx)
	if err != nil || len(ms) == 0 {
		return nil
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		if m.Name == method {
			return nil
		}
		names[i] = m.Name
	}
	return errs.New(errs.NotFound, "environment %s has no method %s; it has: %s", env.Name(), method, strings.Join(names, ", "))
}

func validateInputs(o *ValidateOptions) ([]validate.Input, error) {
	args, err := callargs.Parse(callargs.Input{Arg: o.Arg, ArgStr: o.ArgStr})
	if err != nil {
		return nil, err
	}
	fixed := map[string]any{}
	for k, v := range args.Kwargs {
		fixed[k] = v
	}
	var vary []validate.Vary
	for _, s := range o.Vary {
		v, err := validate.ParseVary(s)
		if err != nil {
			return nil, errs.Wrap(errs.Usage, err)
		}
		vary = append(vary, v)
	}
	if len(vary) == 0 {
		return nil, errs.New(errs.Usage, "nothing varies: give --vary KEY=FROM..TO (e.g. --vary task_id=1..100)")
	}
	inputs, err := validate.Expand(fixed, vary)
	if err != nil {
		return nil, errs.Wrap(errs.Usage, err)
	}
	return inputs, nil
}

// resultFile matches the per-input files an earlier run left, which are removed so that the
// directory describes this run only. Compiled on first use (as unsafeChars): package
// initialisation runs in every rfenv process.
var resultFile = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\d{5}_.*\.json$`) })

func prepareOutput(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errs.New(errs.Usage, "--output %s: %v", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return errs.New(errs.Usage, "--output %s: %v", dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() && (resultFile().MatchString(e.Name()) || e.Name() == "summary.json") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("cannot remove the earlier run's %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

func allCallsFailed(rs []validate.Result) bool {
	if len(rs) == 0 {
		return false
	}
	for _, r := range rs {
		for _, a := range r.Attempts {
			if a.Error == "" {
				return false
			}
		}
	}
	return true
}

func printSummary(f *Factory, o *ValidateOptions, s validate.Summary) {
	p := f.Printer()
	compared := "outputs"
	if s.Field != "" {
		compared = "field " + s.Field
	}
	if s.OK {
		p.Success("%s.%s is consistent: %d/%d inputs gave the same %s on every call (%d replica(s))", o.Name, o.Method, s.Consistent, s.Inputs, compared, s.Replicas)
	} else {
		p.Warn("%s.%s is NOT consistent: %d consistent, %d inconsistent, %d failed of %d inputs", o.Name, o.Method, s.Consistent, s.Inconsistent, s.Failed, s.Inputs)
		for i, pr := range s.Problems {
			if i == 10 {
				p.Warn("  … and %d more (see %s)", len(s.Problems)-10, o.Output)
				break
			}
			p.Warn("  %s: %s: %s", pr.Label, pr.Verdict, pr.Reason)
		}
	}
	div := fmt.Sprintf("diversity %.2f: %d distinct %s over the inputs that answered", s.Diversity, s.Distinct, compared)
	if len(s.Duplicates) > 0 {
		div += fmt.Sprintf("; same output for %s", strings.Join(s.Duplicates[0], ", "))
		if len(s.Duplicates) > 1 {
			div += fmt.Sprintf(" and %d more group(s)", len(s.Duplicates)-1)
		}
		p.Warn("%s", div)
	} else {
		p.Info("%s", div)
	}
	p.Info("results in %s (summary.json and one file per input)", o.Output)
	fmt.Fprintln(f.IO.Out, filepath.Join(o.Output, "summary.json"))
}

// unsafeChars are the characters a file name made from an input leaves out.
var unsafeChars = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^A-Za-z0-9._-]+`) })

func safeFileName(s string) string { return unsafeChars().ReplaceAllString(s, "_") }
