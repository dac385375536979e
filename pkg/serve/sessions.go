package serve

import (
	"context"
	"encoding/json"

	"github.com/rfenv/rfenv/pkg/rfenv"
)

// call runs one call, on the session's replica when the request names a session.
func (s *Server) call(ctx context.Context, env *rfenv.Env, name string, q CallRequest, kwargs any) (json.RawMessage, error) {
	if q.Session != "" {
		return nil, badField("session", "sessions are not available in this build of rfenv serve")
	}
	return env.CallArgs(ctx, q.Method, q.Args, kwargs)
}
