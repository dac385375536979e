package cmd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/serve"
)

// ServeOptions are `rfenv serve`'s inputs.
type ServeOptions struct {
	Socket     string
	Listen     string
	TokenFile  string
	TLSCert    string
	TLSKey     string
	WatchStdin bool
	JSON       bool
}

// serveCleanupTimeout bounds taking down the server's own environments on the way out.
const serveCleanupTimeout = 5 * time.Minute

func newServeCmd(f *Factory, runF func(context.Context, *ServeOptions) error) *cobra.Command {
	o := &ServeOptions{}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the library over HTTP/JSON (the API the Python package uses)",
		Long: `Serve rfenv's library as an HTTP/JSON API under /v1: build, up, list, get, call, methods,
stats, logs and down (schema: GET /v1/openapi.json). It shares the state file with the other
commands, so ` + "`rfenv ls`" + ` and ` + "`rfenv down`" + ` see what its clients started and the other way round.

By default it listens on a unix socket, mode 0600 in a 0700 directory ($XDG_RUNTIME_DIR/rfenv, or
rfenv-UID in the temporary directory). With --listen HOST:PORT it listens on TCP instead and requires
a bearer token, generated at start and written to a 0600 file (--token-file; the path is printed,
the token never is). A non-loopback --listen needs --tls-cert and --tls-key, or gets a warning.

On start it prints where it listens on stdout (one line; --json for an object). On SIGTERM or
SIGINT it stops accepting, lets calls in flight finish, takes down the environments brought up with
"cleanup": true and exits. --watch-stdin does the same when stdin reaches end of file, which is how
a parent process ties the server's life to its own, even when it is killed.

Try it: curl --unix-socket $XDG_RUNTIME_DIR/rfenv/serve.sock http://rfenv/v1/environments`,
		Example: `  rfenv serve
  rfenv serve --socket /run/user/1000/rfenv/serve.sock --watch-stdin --json
  rfenv serve --listen 127.0.0.1:8765 --json`,
		GroupID: groupCalling,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Socket != "" && o.Listen != "" {
				return errs.New(errs.Usage, "--socket and --listen exclude each other: serve on a unix socket or on TCP")
			}
			if (o.TLSCert == "") != (o.TLSKey == "") {
				return errs.New(errs.Usage, "--tls-cert and --tls-key go together")
			}
			if o.TLSCert != "" && o.Listen == "" {
				return errs.New(errs.Usage, "--tls-cert applies to --listen only (a unix socket needs no TLS)")
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runServe(cmd.Context(), f, o)
		},
	}
	fl := c.Flags()
	fl.StringVar(&o.Socket, "socket", "", "unix socket path (default $XDG_RUNTIME_DIR/rfenv/serve.sock); its directory must be 0700")
	fl.StringVar(&o.Listen, "listen", "", "listen on TCP HOST:PORT instead (e.g. 127.0.0.1:8765), with a bearer token")
	fl.StringVar(&o.TokenFile, "token-file", "", "where --listen writes its bearer token, mode 0600 (default beside the socket)")
	fl.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate for --listen")
	fl.StringVar(&o.TLSKey, "tls-key", "", "TLS private key for --listen")
	fl.BoolVar(&o.WatchStdin, "watch-stdin", false, "exit (taking down its cleanup environments) when stdin reaches end of file")
	fl.BoolVar(&o.JSON, "json", false, "print where it listens as a JSON object")
	return c
}

func runServe(ctx context.Context, f *Factory, o *ServeOptions) error {
	client, err := f.Client()
	if err != nil {
		return err
	}
	var l *serve.Listener
	if o.Listen != "" {
		l, err = serve.ListenTCP(o.Listen, o.TokenFile)
	} else {
		l, err = serve.ListenUnix(o.Socket)
	}
	if err != nil {
		return err
	}
	p := f.Printer()
	if o.Listen != "" && !serve.IsLoopback(l.Address) && o.TLSCert == "" {
		p.Warn("WARNING: rfenv serve listens on %s, beyond this machine, WITHOUT TLS: the bearer token and every call travel in clear text. Use --tls-cert/--tls-key, or listen on 127.0.0.1.", l.Address)
	}
	base := ""
	if f.Config.Source(config.KeyBaseImage) != "default" {
		base = f.Config.String(config.KeyBaseImage)
	}
	var progress io.Writer
	if !f.Quiet {
		progress = f.IO.ErrOut
	}
	s := serve.New(serve.Options{Client: client, Logger: f.Logger(), Token: l.Token, Progress: progress, BaseImage: base})

	if err := printListening(f, o, l); err != nil {
		l.Close()
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if o.WatchStdin {
		go func() {
			io.Copy(io.Discard, f.IO.In) // returns at EOF: the parent is gone
			stop()
		}()
	}
	runErr := s.Run(runCtx, l, serve.TLSFiles{Cert: o.TLSCert, Key: o.TLSKey})

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), serveCleanupTimeout)
	defer cancel()
	res, err := s.Cleanup(cctx)
	if len(res) > 0 && !f.Quiet {
		p.Info("rfenv serve: took down %d environment(s) it brought up with cleanup", len(res))
	}
	if runErr != nil {
		return runErr
	}
	return err
}

// printListening says where the server listens: the address on stdout (data), the token file on
// stderr. The token itself is never printed.
func printListening(f *Factory, o *ServeOptions, l *serve.Listener) error {
	url := "unix://" + l.Address
	if l.Network == "tcp" {
		scheme := "http"
		if o.TLSCert != "" {
			scheme = "https"
		}
		url = scheme + "://" + l.Address
	}
	if o.JSON {
		v := map[string]any{"url": url, "network": l.Network, "address": l.Address}
		if l.TokenFile != "" {
			v["token_file"] = l.TokenFile
		}
		if err := f.Printer().JSON(v); err != nil {
			return err
		}
	} else if _, err := fmt.Fprintln(f.IO.Out, url); err != nil {
		return err
	}
	if l.TokenFile != "" && !f.Quiet {
		f.Printer().Info("rfenv serve: bearer token in %s (mode 0600)", l.TokenFile)
	}
	return nil
}
