package rfenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/backend/attached"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
)

// AttachedHost is the host recorded for servers rfenv did not start.
const AttachedHost = attached.Host

// AttachOptions describe servers to register.
type AttachOptions struct {
	Token    string // the bearer token the servers expect ("" for none)
	Type     string // "function" or "http"; default: detected (a shim answers /methods)
	Balancer string
}

// Attach registers environment servers that rfenv did not start — a shim or an http server already
// running somewhere reachable — so that call, methods, stats and ls work on them as on any pool. Down
// only forgets them. Every URL must answer /health now.
func (c *Client) Attach(ctx context.Context, name string, urls []string, o AttachOptions) (*Env, error) {
	if err := state.ValidateName(name); err != nil {
		return nil, errs.Wrap(errs.Usage, err)
	}
	if len(urls) == 0 {
		return nil, errs.New(errs.Usage, "attach %s: give at least one server URL, e.g. http://10.0.0.5:8000", name)
	}
	if o.Type != "" && !protocol.ValidKind(o.Type) {
		return nil, errs.New(errs.Usage, "attach %s: server type %q: use %s or %s (or leave it empty to detect it)", name, o.Type, protocol.KindFunction, protocol.KindHTTP)
	}
	if o.Balancer == "" {
		o.Balancer = protocol.DefaultBalancer
	}
	if err := pool.ValidateStrategy(o.Balancer); err != nil {
		return nil, err
	}
	rec := &state.Environment{Name: name, Type: o.Type, Token: o.Token, Balancer: o.Balancer, Attached: true, Backend: backend.KindAttached,
		Hosts: []string{AttachedHost}, CreatedAt: time.Now().UTC()}
	for i, raw := range urls {
		addr, err := urlAddress(raw)
		if err != nil {
			return nil, err
		}
		rec.Instances = append(rec.Instances, state.Instance{Index: i, Host: AttachedHost, URL: "http://" + addr})
	}
	if rec.Type == "" {
		rec.Type = detectServerKind(ctx, rec.Instances[0].URL)
	}
	b := attached.New(backend.Deps{})
	op, err := b.Open(ctx, rec)
	if err != nil {
		return nil, err
	}
	env, err := c.newEnv(b, op.Env, op)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i, h := range env.Pool().Probe(pctx) {
		if !h.Ready() {
			env.Release()
			return nil, errs.New(errs.Infra, "attach %s: %s does not answer /health as ready (status %s); start the server first", name, urls[i], h.Status)
		}
	}
	unlock, err := c.lockEnv(ctx, name)
	if err != nil {
		env.Release()
		return nil, err
	}
	defer unlock()
	err = c.store.Update(ctx, func(f *state.File) error {
		if prev, ok := f.Environments[name]; ok && recordedBackend(prev) != backend.KindAttached {
			return errs.New(errs.Conflict, "%s is an environment rfenv started; `rfenv down %s` first, or attach under another name", name, name)
		}
		f.Environments[name] = rec
		return nil
	})
	if err != nil {
		env.Release()
		return nil, err
	}
	return env, nil
}

// detectServerKind tells a user's FastAPI server (it serves /openapi.json, no token needed) from a
// shim (it answers 404 there).
func detectServerKind(ctx context.Context, base string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/openapi.json", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return pool.KindFunction
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string `json:"openapi"`
	}
	if resp.StatusCode == http.StatusOK && json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&doc) == nil && doc.OpenAPI != "" {
		return pool.KindHTTP
	}
	return pool.KindFunction
}

// urlAddress turns a server URL (http://host:port, or host:port) into host:port.
func urlAddress(raw string) (string, error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", errs.New(errs.Usage, "server URL %q: expected http://HOST:PORT", raw)
	}
	if u.Scheme != "http" {
		return "", errs.New(errs.Usage, "server URL %q: only http:// is supported (servers are reached on a trusted network or through SSH)", raw)
	}
	if u.Path != "" && u.Path != "/" {
		return "", errs.New(errs.Usage, "server URL %q: give the server's root, without a path", raw)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), fmt.Sprint(protocol.DefaultPort)), nil
	}
	return u.Host, nil
}
