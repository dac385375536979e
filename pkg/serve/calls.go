package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/rfenv/rfenv/pkg/errs"
)

// validate checks a call request before anything is sent.
func (q *CallRequest) validate() error {
	if q.Method == "" {
		return badField("method", "required")
	}
	if q.TimeoutMs < 0 {
		return badField("timeout_ms", "must not be negative")
	}
	if k := bytes.TrimSpace(q.Kwargs); len(k) > 0 && k[0] != '{' && !bytes.Equal(k, []byte("null")) {
		return badField("kwargs", "expected a JSON object of keyword arguments")
	}
	return nil
}

func (s *Server) handleCall(w http.ResponseWriter, r *http.Request) {
	var q CallRequest
	if err := decode(r, &q); err != nil {
		writeError(w, err)
		return
	}
	if err := q.validate(); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	env, err := s.env(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx := r.Context()
	if q.TimeoutMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ms(q.TimeoutMs))
		defer cancel()
	}
	var kwargs any
	if k := bytes.TrimSpace(q.Kwargs); len(k) > 0 && !bytes.Equal(k, []byte("null")) {
		kwargs = json.RawMessage(k)
	}
	res, err := s.call(ctx, env, name, q, kwargs)
	if err != nil {
		if errs.KindOf(err) == errs.Infra {
			// The environment may have been recreated or removed by another process: read the
			// state file again on the next request.
			s.forget(name)
		}
		writeError(w, err)
		return
	}
	// {"result": RAW}: the replica's JSON is passed through without decoding it.
	b := make([]byte, 0, len(res)+11)
	b = append(b, `{"result":`...)
	b = append(b, res...)
	b = append(b, '}')
	writeBody(w, http.StatusOK, b)
}

func (s *Server) handleMethods(w http.ResponseWriter, r *http.Request) {
	env, err := s.env(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	ms, err := env.Methods(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"methods": ms})
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	env, err := s.env(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, env.Stats(r.Context()))
}
