package serve

import (
	"context"
	"crypto/tls"
	"net/http"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
)

// TLSFiles are a certificate and key for a TCP listener (both or neither).
type TLSFiles struct{ Cert, Key string }

// Run serves on l until ctx is done, then stops accepting, lets the requests in flight finish
// (calls keep their own deadlines; requests never see ctx's cancellation) and returns. It does not
// take environments down: call Cleanup after it.
func (s *Server) Run(ctx context.Context, l *Listener, t TLSFiles) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		// Requests run on the server's own base context (not ctx), so a SIGTERM lets the calls in
		// flight finish.
	}
	if t.Cert != "" || t.Key != "" {
		if t.Cert == "" || t.Key == "" {
			return errs.New(errs.Usage, "TLS needs both a certificate and a key (--tls-cert and --tls-key)")
		}
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return errs.New(errs.Usage, "TLS certificate: %v", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	done := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			done <- srv.ServeTLS(l, "", "")
		} else {
			done <- srv.Serve(l)
		}
	}()
	select {
	case err := <-done:
		l.Close()
		return errs.Wrap(errs.Infra, errClosed(ignoreServerClosed(err)))
	case <-ctx.Done():
	}
	// Shutdown closes the listener and idle connections, then waits for active requests. A second
	// signal ends the process (cmd's signal handling), so no bound is needed here.
	err := srv.Shutdown(context.Background())
	l.Close()
	<-done
	return errClosed(ignoreServerClosed(err))
}

func ignoreServerClosed(err error) error {
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}
