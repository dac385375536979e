package docker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
)

// transferImage streams an image from the local daemon into a remote one (docker save | docker load,
// through the SSH connection), since remote hosts may reach no registry.
func (c *Backend) transferImage(ctx context.Context, image string, dst host.Spec, conns map[string]*dockerhost.Conn, progress io.Writer) error {
	src, err := c.conn(ctx, host.Spec{Kind: host.Local, Raw: host.LocalName})
	if err != nil {
		return err
	}
	if _, err := src.Docker.ImageInspect(ctx, image); err != nil {
		return errs.New(errs.NotFound, "image %s is on neither %s nor the local daemon: build it there with `rfenv build --host %s DIR -t %s`", image, dst, dst, image)
	}
	start := time.Now()
	saved, err := src.Docker.ImageSave(ctx, []string{image})
	if err != nil {
		return errs.Wrap(errs.Infra, fmt.Errorf("export %s from the local daemon: %w", image, err))
	}
	defer saved.Close()
	counter := &countingReader{r: saved}
	if progress != nil {
		fmt.Fprintf(progress, "%s is not on %s: sending it from the local daemon\n", image, dst)
	}
	stop := reportProgress(progress, fmt.Sprintf("sending %s to %s", image, dst), counter)
	loaded, err := conns[dst.Raw].Docker.ImageLoad(ctx, counter, client.ImageLoadWithQuiet(true))
	if err != nil {
		stop()
		return errs.Wrap(errs.Infra, fmt.Errorf("import %s into %s: %w", image, dst, err))
	}
	defer loaded.Close()
	loadErr := loadStreamError(loaded)
	stop()
	if loadErr != nil {
		return errs.Wrap(errs.Infra, fmt.Errorf("import %s into %s: %w", image, dst, loadErr))
	}
	if progress != nil {
		fmt.Fprintf(progress, "sent %s to %s: %s in %s\n", image, dst, humanBytes(counter.n.Load()), time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

// loadStreamError reads the daemon's JSON message stream and returns the first error it reports.
func loadStreamError(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return fmt.Errorf("%s", m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return fmt.Errorf("%s", m.Error)
		}
	}
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// reportProgress writes a line a second while a transfer runs; it returns a function that stops it.
func reportProgress(w io.Writer, what string, c *countingReader) func() {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := c.n.Load()
				rate := float64(n) / time.Since(start).Seconds()
				fmt.Fprintf(w, "%s: %s (%s/s)\n", what, humanBytes(n), humanBytes(int64(rate)))
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
