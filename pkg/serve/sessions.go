package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/rfenv/rfenv/pkg/rfenv"
)

// call runs one call, on the session's replica when the request names a session. A session named
// by a key the server has not seen is opened by its first call (the library's Env.Session).
func (s *Server) call(ctx context.Context, env *rfenv.Env, name string, q CallRequest, kwargs any) (json.RawMessage, error) {
	if q.Session != "" {
		return env.Session(q.Session).CallArgs(ctx, q.Method, q.Args, kwargs)
	}
	return env.CallArgs(ctx, q.Method, q.Args, kwargs)
}

// SessionView is a session as the API shows it.
type SessionView struct {
	Key      string    `json:"key"`
	Replica  int       `json:"replica"`
	Created  time.Time `json:"created,omitzero"`
	LastUsed time.Time `json:"last_used,omitzero"`
	Calls    int64     `json:"calls"`
}

func (s *Server) handleOpenSession(w http.ResponseWriter, r *http.Request) {
	var q struct{}
	if r.ContentLength != 0 {
		if err := decode(r, &q); err != nil {
			writeError(w, err)
			return
		}
	}
	env, err := s.env(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	sess, err := env.OpenSession(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := sess.Open(r.Context()) // already placed: says where
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionView(info))
}

func sessionView(in rfenv.SessionInfo) SessionView {
	return SessionView{Key: in.Key, Replica: in.Replica, Created: in.Created, LastUsed: in.LastUsed, Calls: in.Calls}
}

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) {
	env, err := s.env(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	infos, err := env.Sessions(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	out := []SessionView{}
	for _, in := range infos {
		out = append(out, sessionView(in))
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) handleCloseSession(w http.ResponseWriter, r *http.Request) {
	env, err := s.env(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	key := r.PathValue("key")
	if err := env.Session(key).Close(r.Context()); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": key, "closed": true})
}
