// Package serve is the /v1 HTTP/JSON API over the rfenv library (`rfenv serve`): build, up, list,
// get, call, methods, stats, sessions, down and logs, so that Python (and any other language) gets
// the whole library through one local API. It holds no logic of its own beyond translating requests
// and errors; what a call does is the library's.
package serve

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// Library is the part of *rfenv.Client the server uses.
type Library interface {
	Up(ctx context.Context, image string, opts ...rfenv.UpOption) (*rfenv.Env, error)
	Attach(ctx context.Context, name string, urls []string, o rfenv.AttachOptions) (*rfenv.Env, error)
	Get(ctx context.Context, name string, opts ...rfenv.EnvOption) (*rfenv.Env, error)
	Down(ctx context.Context, names []string, o rfenv.DownOptions) ([]rfenv.DownResult, error)
	Logs(ctx context.Context, name string, o rfenv.LogsOptions, w io.Writer) error
}

var _ Library = (*rfenv.Client)(nil)

// Options configure a Server.
type Options struct {
	Client *rfenv.Client
	Logger *slog.Logger // nil discards
	// Token, when set, is required as "Authorization: Bearer TOKEN" on every request (TCP listeners).
	Token string
	// Progress receives human-readable progress of up (image transfer, readiness) and BuildKit's
	// display for builds that are not quiet; nil discards.
	Progress io.Writer
	// BaseImage is the FROM of generated Dockerfiles when a build names none (the CLI's base_image).
	BaseImage string
}

// Server answers the /v1 API. It keeps one *rfenv.Env per environment it has called, so calls reuse
// the pool's keep-alive connections; up and down through the server replace or drop it.
type Server struct {
	opts Options
	lib  Library
	log  *slog.Logger
	mux  *http.ServeMux

	mu    sync.Mutex
	envs  map[string]*rfenv.Env
	owned map[string]bool // environments taken down by Cleanup
}

// New returns a Server over the client.
func New(o Options) *Server {
	s := &Server{opts: o, log: o.Logger, envs: map[string]*rfenv.Env{}, owned: map[string]bool{}}
	if o.Client != nil {
		s.lib = o.Client
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		s.mux.HandleFunc(rt.method+" "+rt.pattern, rt.handler)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errs.New(errs.NotFound, "no such resource: %s %s (see GET /v1/openapi.json)", r.Method, r.URL.Path))
	})
	return s
}

// route is one operation of the API; the table feeds both the mux and the schema's test.
type route struct {
	method, pattern string
	handler         http.HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{"GET", "/v1/openapi.json", s.handleOpenAPI},
		{"GET", "/v1/health", s.handleHealth},
		{"POST", "/v1/builds", s.handleBuild},
		{"POST", "/v1/environments", s.handleUp},
		{"GET", "/v1/environments", s.handleList},
		{"GET", "/v1/environments/{name}", s.handleGet},
		{"DELETE", "/v1/environments/{name}", s.handleDown},
		{"POST", "/v1/environments/{name}/calls", s.handleCall},
		{"GET", "/v1/environments/{name}/methods", s.handleMethods},
		{"GET", "/v1/environments/{name}/stats", s.handleStats},
		{"GET", "/v1/environments/{name}/logs", s.handleLogs},
		{"POST", "/v1/environments/{name}/sessions", s.handleOpenSession},
		{"GET", "/v1/environments/{name}/sessions", s.handleListSessions},
		{"DELETE", "/v1/environments/{name}/sessions/{key}", s.handleCloseSession},
	}
}

// ServeHTTP checks the bearer token (when one is set) and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.Token != "" && !validBearer(r.Header.Get("Authorization"), s.opts.Token) {
		writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: ErrorInfo{Kind: KindUsage, Field: "Authorization", Message: "missing or wrong bearer token (it is in the token file rfenv serve printed)"}})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// env returns the cached Env for name, getting it from the state file on first use.
func (s *Server) env(ctx context.Context, name string) (*rfenv.Env, error) {
	s.mu.Lock()
	e := s.envs[name]
	s.mu.Unlock()
	if e != nil {
		return e, nil
	}
	e, err := s.lib.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev := s.envs[name]; prev != nil { // another request got there first
		e.Release()
		return prev, nil
	}
	s.envs[name] = e
	return e, nil
}

// forget drops the cached Env of name, so the next request reads the state file again (after an
// up or down, or when a call suggests the environment changed under us).
func (s *Server) forget(name string) {
	s.mu.Lock()
	e := s.envs[name]
	delete(s.envs, name)
	s.mu.Unlock()
	if e != nil {
		e.Release()
	}
}

// keep caches e as the environment's Env, replacing an older one.
func (s *Server) keep(e *rfenv.Env, owned bool) {
	s.mu.Lock()
	prev := s.envs[e.Name()]
	s.envs[e.Name()] = e
	if owned {
		s.owned[e.Name()] = true
	}
	s.mu.Unlock()
	if prev != nil && prev != e {
		prev.Release()
	}
}

func (s *Server) isOwned(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owned[name]
}

// Owned lists the environments this server takes down in Cleanup.
func (s *Server) Owned() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.owned))
	for n := range s.owned {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Cleanup takes down the environments brought up with cleanup (all at once) and releases every
// cached Env. It is what the server does on its way out.
func (s *Server) Cleanup(ctx context.Context) ([]rfenv.DownResult, error) {
	names := s.Owned()
	s.mu.Lock()
	envs := s.envs
	s.envs = map[string]*rfenv.Env{}
	s.owned = map[string]bool{}
	s.mu.Unlock()
	for _, e := range envs {
		e.Release()
	}
	if len(names) == 0 || s.lib == nil {
		return nil, nil
	}
	return s.lib.Down(ctx, names, rfenv.DownOptions{})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
