package serve

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/state"
)

// upOptions validates an UpRequest and turns it into the library's options. Every check names the
// field; the library checks the rest (balancer, type, host specs) in its own words.
func (q *UpRequest) upOptions() (rfenv.UpOptions, error) {
	var o rfenv.UpOptions
	switch {
	case q.Image == "" && len(q.URLs) == 0:
		return o, badField("image", "required (or urls, to attach running servers)")
	case q.Image != "" && len(q.URLs) > 0:
		return o, badField("urls", "give either image (start containers) or urls (attach servers), not both")
	case q.Replicas < 0:
		return o, badField("replicas", "%d: need at least 1 (DELETE the environment to remove it)", q.Replicas)
	case q.ReadyTimeoutMs < 0:
		return o, badField("ready_timeout_ms", "must not be negative")
	case q.Memory < 0:
		return o, badField("memory", "must not be negative")
	case q.CPUs < 0:
		return o, badField("cpus", "must not be negative")
	case q.MaxInflight < 0:
		return o, badField("max_inflight", "must not be negative")
	case q.MaxSessions < 0:
		return o, badField("max_sessions", "must not be negative")
	case q.SessionTTLMs < 0:
		return o, badField("session_ttl_ms", "must not be negative")
	case q.OverdueRestartMs < 0:
		return o, badField("overdue_restart_ms", "must not be negative")
	}
	if q.Name != "" {
		if err := state.ValidateName(q.Name); err != nil {
			return o, badField("name", "%v", err)
		}
	}
	for k := range q.Labels {
		if k == "" || strings.HasPrefix(k, "rfenv.") {
			return o, badField("labels", "key %q: keys must be non-empty and outside the reserved rfenv. prefix", k)
		}
	}
	for k := range q.Env {
		if k == "" {
			return o, badField("env", "empty variable name")
		}
	}
	o = rfenv.UpOptions{
		Name: q.Name, Replicas: q.Replicas, Hosts: q.Hosts, Env: q.Env, Secrets: q.Secrets, Type: q.Type,
		Balancer: q.Balancer, ForceRecreate: q.ForceRecreate, ReadyTimeout: ms(q.ReadyTimeoutMs),
		Memory: q.Memory, NanoCPUs: int64(q.CPUs * 1e9), GPUs: q.GPUs, Network: q.Network, Volumes: q.Volumes,
		Labels: q.Labels, NoTransfer: q.NoTransfer, Pull: q.Pull, PullPolicy: q.PullPolicy,
		MaxInflight: q.MaxInflight, MaxSessions: q.MaxSessions, SessionTTL: ms(q.SessionTTLMs),
		OverdueRestart: ms(q.OverdueRestartMs), Transport: q.Transport,
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = rfenv.DefaultReadyTimeout
	}
	return o, nil
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func (s *Server) handleUp(w http.ResponseWriter, r *http.Request) {
	var q UpRequest
	if err := decode(r, &q); err != nil {
		writeError(w, err)
		return
	}
	o, err := q.upOptions()
	if err != nil {
		writeError(w, err)
		return
	}
	var env *rfenv.Env
	if len(q.URLs) > 0 {
		if q.Name == "" {
			writeError(w, badField("name", "required to attach servers"))
			return
		}
		env, err = s.lib.Attach(r.Context(), q.Name, q.URLs, rfenv.AttachOptions{Token: q.Token, Type: q.Type, Balancer: q.Balancer})
	} else {
		o.Progress = s.opts.Progress
		env, err = s.lib.Up(r.Context(), q.Image, rfenv.WithUpOptions(o))
	}
	if err != nil {
		s.forget(o.Name)
		writeError(w, err)
		return
	}
	s.keep(env, q.Cleanup)
	rec := env.Record()
	s.log.Info("up", "env", rec.Name, "replicas", len(rec.Instances), "cleanup", q.Cleanup)
	writeJSON(w, http.StatusOK, viewOf(&rec, s.isOwned(rec.Name)))
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	f, err := s.opts.Client.Store().Load(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	out := []EnvView{}
	for _, n := range f.Names() {
		out = append(out, viewOf(f.Environments[n], s.isOwned(n)))
	}
	writeJSON(w, http.StatusOK, map[string]any{"environments": out})
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	rec, err := s.opts.Client.Store().Get(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(rec, s.isOwned(name)))
}

func (s *Server) handleDown(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.forget(name)
	res, err := s.lib.Down(r.Context(), []string{name}, rfenv.DownOptions{})
	s.mu.Lock()
	delete(s.owned, name)
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	out := rfenv.DownResult{Name: name}
	if len(res) > 0 {
		out = res[0]
	}
	writeJSON(w, http.StatusOK, out)
}

// handleLogs streams the containers' output as text: ?replica=I (repeatable), tail=N (default all),
// follow=true, timestamps=true.
func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := rfenv.LogsOptions{}
	for _, v := range q["replica"] {
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			writeError(w, badField("replica", "%q: expected a replica index (0, 1, ...)", v))
			return
		}
		o.Replicas = append(o.Replicas, i)
	}
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, badField("tail", "%q: expected a number of lines", v))
			return
		}
		o.Tail = n
	}
	var err error
	if o.Follow, err = boolParam(q.Get("follow"), "follow"); err != nil {
		writeError(w, err)
		return
	}
	if o.Timestamps, err = boolParam(q.Get("timestamps"), "timestamps"); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	if _, err := s.opts.Client.Store().Get(r.Context(), name); err != nil {
		writeError(w, err) // a JSON error while nothing is written yet
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fw := &flushWriter{w: w}
	if err := s.lib.Logs(r.Context(), name, o, fw); err != nil && !fw.wrote {
		writeError(w, err)
	} else if err != nil {
		s.log.Warn("logs", "env", name, "err", err)
	}
}

func boolParam(v, field string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badField(field, "%q: expected true or false", v)
	}
	return b, nil
}

// flushWriter sends each write at once, so a followed log reaches the client line by line.
type flushWriter struct {
	w     http.ResponseWriter
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}
