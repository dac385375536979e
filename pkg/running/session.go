package running

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
)

// DefaultSessionTTL is how long a session may idle before it expires (UpOptions.SessionTTL).
const DefaultSessionTTL = protocol.DefaultSessionTTL

// Session pins calls to the replica that holds an episode: every call of a session reaches the
// same server process, from this process or any other using the same state directory. It is never
// moved: when that replica dies, is replaced or restarts (its in-memory episodes are gone), a call
// fails with an error of kind errs.SessionLost and the session is forgotten.
type Session struct {
	e   *Env
	key string
}

// SessionInfo describes an open session.
type SessionInfo struct {
	Key      string    `json:"key"`
	Replica  int       `json:"replica"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"`
	Calls    int64     `json:"calls"`
}

// OpenSession opens a session with a new random key, placed on the healthy replica with the fewest
// live sessions (ties go to the one with fewer calls in flight). When every replica holds
// UpOptions.MaxSessions sessions it fails at once (errs.Infra) rather than overcommit one.
func (e *Env) OpenSession(ctx context.Context) (*Session, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	s := e.Session("s-" + hex.EncodeToString(b))
	if _, err := s.resolve(ctx, true); err != nil {
		return nil, err
	}
	return s, nil
}

// Session returns the session key. A key that was never opened is opened (placed) by its first
// call, so that scripts may choose their own keys.
func (e *Env) Session(key string) *Session { return &Session{e: e, key: key} }

// Key is the session's key.
func (s *Session) Key() string { return s.key }

// Open places the session now if it is not open yet, and says where it is.
func (s *Session) Open(ctx context.Context) (SessionInfo, error) {
	sess, err := s.resolve(ctx, true)
	if err != nil {
		return SessionInfo{}, err
	}
	return infoOf(sess), nil
}

// Call calls method with keyword arguments on the session's replica.
func (s *Session) Call(ctx context.Context, method string, kwargs any) (json.RawMessage, error) {
	return s.CallArgs(ctx, method, nil, kwargs)
}

// CallInto calls method on the session's replica and decodes its result into out.
func (s *Session) CallInto(ctx context.Context, method string, kwargs any, out any) error {
	res, err := s.Call(ctx, method, kwargs)
	if err != nil {
		return err
	}
	return json.Unmarshal(res, out)
}

// CallArgs calls method with positional and keyword arguments on the session's replica.
func (s *Session) CallArgs(ctx context.Context, method string, args []any, kwargs any) (json.RawMessage, error) {
	body, err := s.e.pool.Encode(pool.Request{Method: method, Args: args, Kwargs: kwargs})
	if err != nil {
		return nil, err
	}
	return s.CallEncoded(ctx, method, body)
}

// CallEncoded is CallArgs with a body from the pool's Encode (batches encode once).
func (s *Session) CallEncoded(ctx context.Context, method string, body []byte) (json.RawMessage, error) {
	sess, err := s.resolve(ctx, true)
	if err != nil {
		return nil, err
	}
	res, err := s.e.pool.CallPinned(ctx, sess.Replica, sess.BootID, method, body)
	var pe *pool.PinnedError
	if errors.As(err, &pe) {
		s.forget()
		return nil, errs.Wrap(errs.SessionLost, fmt.Errorf("session %s was on replica %d, which %s; open a new session", s.key, sess.Replica, pe.Why))
	}
	if err == nil || errors.Is(err, errs.MethodRaised) {
		// The call reached the method: the session is in use.
		if ok, _ := s.e.sessionTable().Touch(ctx, s.key, 1, time.Now()); !ok {
			s.e.sessionCache.Delete(s.key) // closed by another process meanwhile
		}
	}
	if err != nil {
		return nil, s.e.Explain(ctx, err)
	}
	return res, nil
}

// Close forgets the session; its replica keeps running. Closing a session that is not open is not
// an error.
func (s *Session) Close(ctx context.Context) error {
	s.e.sessionCache.Delete(s.key)
	return s.e.sessionTable().Remove(s.key)
}

func (s *Session) forget() {
	s.e.sessionCache.Delete(s.key)
	_ = s.e.sessionTable().Remove(s.key)
}

// Sessions lists the environment's open sessions (expired ones are removed on the way).
func (e *Env) Sessions(ctx context.Context) ([]SessionInfo, error) {
	all, err := e.sessionTable().List()
	if err != nil {
		return nil, err
	}
	live := e.live(all)
	out := make([]SessionInfo, 0, len(live))
	for _, sess := range live {
		out = append(out, infoOf(sess))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

func infoOf(s state.Session) SessionInfo {
	return SessionInfo{Key: s.Key, Replica: s.Replica, Created: s.Created, LastUsed: s.LastUsed, Calls: s.Calls}
}

// resolve finds the session's record, opening it when create is set and it is not open.
func (s *Session) resolve(ctx context.Context, create bool) (state.Session, error) {
	if v, ok := s.e.sessionCache.Load(s.key); ok {
		sess := v.(state.Session)
		if !s.e.expired(sess, time.Now()) {
			return sess, nil
		}
	}
	tab := s.e.sessionTable()
	sess, ok, err := tab.Get(s.key)
	if err != nil {
		return state.Session{}, errs.Wrap(errs.Infra, err)
	}
	if ok && s.e.expired(sess, time.Now()) {
		_ = tab.Remove(s.key)
		return state.Session{}, errs.New(errs.SessionLost, "session %s expired after %s without calls (the environment's session TTL); open a new session", s.key, s.e.sessionTTL())
	}
	if !ok {
		if !create {
			return state.Session{}, errs.New(errs.NotFound, "no session %s in %s", s.key, s.e.Name())
		}
		if err := state.ValidateSessionKey(s.key); err != nil {
			return state.Session{}, errs.Wrap(errs.Usage, err)
		}
		// The boot ids are asked for before the table's lock is taken, so that concurrent opens
		// do not queue behind each other's round trips.
		boots := s.e.boots(ctx)
		sess, err = tab.Open(ctx, s.key, func(open []state.Session) (state.Session, error) { return s.e.place(open, boots) })
		if err != nil && !errors.Is(err, state.ErrSessionExists) {
			return state.Session{}, err
		}
	}
	s.e.sessionCache.Store(s.key, sess)
	return sess, nil
}

// place chooses the replica of a new session: among replicas in rotation that hold fewer than
// MaxSessions live sessions, the one with the fewest, ties broken by calls in flight. It runs under
// the session table's lock, so concurrent opens (from any process) see each other.
func (e *Env) place(open []state.Session, boots map[int]string) (state.Session, error) {
	counts := map[int]int{}
	for _, sess := range e.live(open) {
		counts[sess.Replica]++
	}
	cands := e.pool.Placeable()
	if len(cands) == 0 {
		return state.Session{}, errs.New(errs.Infra, "no healthy replica of %s can take a new session; check `rfenv stats %s`", e.Name(), e.Name())
	}
	best := -1
	for i, c := range cands {
		if e.record().MaxSessions > 0 && counts[c.Index] >= e.record().MaxSessions {
			continue
		}
		if best < 0 || counts[c.Index] < counts[cands[best].Index] ||
			(counts[c.Index] == counts[cands[best].Index] && c.InFlight < cands[best].InFlight) {
			best = i
		}
	}
	if best < 0 {
		return state.Session{}, errs.New(errs.Infra, "every healthy replica of %s already holds %d sessions, the most each may (max sessions): close sessions you no longer need, or run more replicas", e.Name(), e.record().MaxSessions)
	}
	idx := cands[best].Index
	boot, ok := boots[idx]
	if !ok {
		return state.Session{}, errs.New(errs.Infra, "place a session on replica %d of %s: it did not say which server process it runs (no answer to /health)", idx, e.Name())
	}
	now := time.Now().UTC()
	return state.Session{Replica: idx, BootID: boot, Created: now, LastUsed: now}, nil
}

// boots asks every replica in rotation for its boot id, at once; replicas that do not answer are
// left out (a session is not placed on them).
func (e *Env) boots(ctx context.Context) map[int]string {
	cands := e.pool.Placeable()
	out := make(map[int]string, len(cands))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b, err := e.pool.Boot(ctx, c.Index); err == nil {
				mu.Lock()
				out[c.Index] = b
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// live drops expired sessions from all, removing their records.
func (e *Env) live(all []state.Session) []state.Session {
	now := time.Now()
	out := all[:0:0]
	for _, sess := range all {
		if e.expired(sess, now) {
			_ = e.sessionTable().Remove(sess.Key)
			continue
		}
		out = append(out, sess)
	}
	return out
}

func (e *Env) expired(s state.Session, now time.Time) bool {
	return now.Sub(s.LastUsed) > e.sessionTTL()
}

func (e *Env) sessionTTL() time.Duration {
	if e.record().SessionTTLMs > 0 {
		return time.Duration(e.record().SessionTTLMs) * time.Millisecond
	}
	return DefaultSessionTTL
}

// sessionTable is the environment's table (the name was validated when it was recorded).
func (e *Env) sessionTable() *state.SessionTable {
	t, _ := e.d.Store.Sessions(e.Name())
	return t
}

// sessionCounts is the number of live sessions per replica index.
func (e *Env) sessionCounts() map[int]int {
	all, err := e.sessionTable().List()
	if err != nil {
		return nil
	}
	counts := map[int]int{}
	for _, sess := range e.live(all) {
		counts[sess.Replica]++
	}
	return counts
}

// Encode, CallEncoded and CallSession make an Env a batch.SessionCaller: a batch's lines with a
// "session" run on that session's replica.

// Encode builds a call's body once (see pool.Pool.Encode).
func (e *Env) Encode(req pool.Request) ([]byte, error) { return e.pool.Encode(req) }

// CallEncoded calls a method with a body from Encode on a replica the balancer picks.
func (e *Env) CallEncoded(ctx context.Context, method string, body []byte) (json.RawMessage, error) {
	return e.pool.CallEncoded(ctx, method, body)
}

// CallSession calls a method with a body from Encode on session key's replica.
func (e *Env) CallSession(ctx context.Context, key, method string, body []byte) (json.RawMessage, error) {
	return e.Session(key).CallEncoded(ctx, method, body)
}
