package serve

import (
	"io"
	"net/http"
	"path/filepath"

	"github.com/rfenv/rfenv/pkg/build"
)

func (s *Server) handleBuild(w http.ResponseWriter, r *http.Request) {
	var q BuildRequest
	if err := decode(r, &q); err != nil {
		writeError(w, err)
		return
	}
	switch {
	case q.Path == "":
		writeError(w, badField("path", "required: the environment directory (holds env.py)"))
		return
	case q.Tag == "":
		writeError(w, badField("tag", "required: the image tag, e.g. affine:latest"))
		return
	}
	if _, err := build.ParseKind(q.Type); err != nil {
		writeError(w, badField("type", "%v", err))
		return
	}
	if q.BaseImage == "" {
		q.BaseImage = s.opts.BaseImage
	}
	dir, err := filepath.Abs(q.Path) // relative to the server's working directory
	if err != nil {
		writeError(w, badField("path", "%v", err))
		return
	}
	var progress io.Writer
	mode := "quiet"
	if !q.Quiet && s.opts.Progress != nil {
		progress, mode = s.opts.Progress, "plain"
	}
	res, err := s.opts.Client.Build(r.Context(), q.Hosts, build.Options{
		Dir: dir, Tag: q.Tag, Type: build.Kind(q.Type), BaseImage: q.BaseImage, BuildArgs: q.BuildArgs,
		NoCache: q.NoCache, Progress: progress, ProgressMode: mode, Logger: s.log,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	out := []BuildResult{}
	for _, b := range res {
		out = append(out, BuildResult{
			Host: b.Host, Image: b.Image, ImageID: b.ImageID, Type: string(b.Kind), Port: b.Port,
			BaseImage: b.Result.BaseImage, DurationMs: b.Duration.Milliseconds(),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"builds": out})
}
