package cmd

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/pkg/errs"
)

// templates holds the files `rfenv init` writes, one directory per environment type.
//
//go:embed templates
var templates embed.FS

// initFiles are the files init writes, in this order; each has a template NAME.tmpl.
var initFiles = []string{"env.py", "Dockerfile", "requirements.txt", "README.md"}

// initTypes are the environment types init can write.
var initTypes = []string{"function", "http"}

// InitOptions are `rfenv init`'s inputs.
type InitOptions struct {
	Dir       string
	Type      string
	BaseImage string
	Force     bool
}

// initData is what the templates see.
type initData struct {
	Name      string // environment name, from the directory's name
	Tag       string // image tag suggested in the README
	BaseImage string
}

func newInitCmd(f *Factory) *cobra.Command {
	o := &InitOptions{}
	c := &cobra.Command{
		Use:   "init DIR",
		Short: "Create a new environment directory",
		Long: `Create DIR (if needed) with a working environment to start from:

  env.py            --type function: an Actor class with a sync and an async method;
                    --type http: a FastAPI app with GET /health and a POST route
  Dockerfile        FROM --base-image, requirements.txt installed in its own layer, then the
                    directory copied to /app (for http: uvicorn on port 8000)
  requirements.txt  your Python dependencies (empty, so the first build needs no network)
  README.md         how to build, start and call it

Existing files are never overwritten unless --force is given. Paths of the files written are
printed on stdout.`,
		Example: `  rfenv init ./environments/affine
  rfenv init web --type http
  rfenv init myenv --base-image rfenv-python:bookworm && rfenv build myenv -t myenv:latest`,
		GroupID: groupLifecycle,
		Args:    exactArgs(1, "a directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Dir = args[0]
			return runInit(cmd.Context(), f, o)
		},
	}
	fl := c.Flags()
	fl.StringVar(&o.Type, "type", "function", "environment type: function (an Actor class) or http (a FastAPI app)")
	fl.StringVar(&o.BaseImage, "base-image", f.Config.String(config.KeyBaseImage), "FROM of the Dockerfile")
	fl.BoolVar(&o.Force, "force", false, "overwrite files that already exist")
	return c
}

func runInit(_ context.Context, f *Factory, o *InitOptions) error {
	kind := strings.ToLower(strings.TrimSpace(o.Type))
	if !slices.Contains(initTypes, kind) {
		return errs.New(errs.Usage, "--type %q: use function (an Actor class) or http (a FastAPI app)", o.Type)
	}
	if _, err := reference.ParseNormalizedNamed(o.BaseImage); err != nil {
		return errs.New(errs.Usage, "--base-image %q: not an image reference (%v); use e.g. python:3.12-slim", o.BaseImage, err)
	}
	if fi, err := os.Stat(o.Dir); err == nil && !fi.IsDir() {
		return errs.New(errs.Usage, "%s is a file, not a directory: choose another path for the environment", o.Dir)
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return errs.New(errs.Usage, "directory %s: %v", o.Dir, err)
	}
	name := envNameFromDir(filepath.Base(abs))
	data := initData{Name: name, Tag: name + ":latest", BaseImage: o.BaseImage}

	// Render everything and check every path before writing anything, so a refusal leaves the
	// directory as it was.
	contents := make([][]byte, len(initFiles))
	var exist []string
	for i, file := range initFiles {
		b, err := renderTemplate(kind, file, data)
		if err != nil {
			return err
		}
		contents[i] = b
		p := filepath.Join(o.Dir, file)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return errs.New(errs.Usage, "cannot check %s: %v", p, err)
		case fi.IsDir():
			return errs.New(errs.Usage, "%s is a directory: rfenv init needs that name for a file; choose another directory", p)
		case !o.Force:
			exist = append(exist, p)
		}
	}
	if len(exist) > 0 {
		verb := "exists"
		if len(exist) > 1 {
			verb = "exist"
		}
		return errs.New(errs.Usage, "%s already %s: pass --force to overwrite, or choose another directory", initJoinAnd(exist), verb)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return errs.New(errs.Usage, "cannot create %s: %v", o.Dir, err)
	}
	p := f.Printer()
	for i, file := range initFiles {
		path := filepath.Join(o.Dir, file)
		if err := os.WriteFile(path, contents[i], 0o644); err != nil {
			return errs.New(errs.Usage, "cannot write %s: %v", path, err)
		}
		if _, err := fmt.Fprintln(f.IO.Out, path); err != nil {
			return err
		}
	}
	p.Success("created a %s environment in %s", kind, o.Dir)
	p.Info("next: rfenv build %s -t %s && rfenv up %s && rfenv call %s add --arg a=2 --arg b=3", initShellArg(o.Dir), data.Tag, data.Tag, name)
	return nil
}

func renderTemplate(kind, file string, data initData) ([]byte, error) {
	name := kind + "/" + file + ".tmpl"
	src, err := templates.ReadFile("templates/" + name)
	if err != nil {
		return nil, fmt.Errorf("template %s is missing from this build: %w", name, err)
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// envNameFromDir turns a directory's name into an environment name that is also a valid image
// name and container name: lower case letters and digits, single separators between them.
func envNameFromDir(base string) string {
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(base) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if sep && b.Len() > 0 {
				b.WriteByte('-')
			}
			sep = false
			b.WriteRune(r)
		default:
			sep = true
		}
	}
	if b.Len() == 0 {
		return "myenv"
	}
	return b.String()
}

func initJoinAnd(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// initShellArg quotes s for a shell command line when it needs it.
func initShellArg(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
