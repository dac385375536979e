package sshx

import "sync"

// Pool holds one Client per target (user, host and port; the socket path does not matter), so
// that the whole process shares one SSH connection per server. Make one per process.
type Pool struct {
	opts   Options
	mu     sync.Mutex
	links  map[string]*link
	closed bool
}

// NewPool returns an empty pool whose clients use opts.
func NewPool(opts Options) *Pool {
	return &Pool{opts: opts, links: map[string]*link{}}
}

// Get returns the pool's Client for target (ssh://[user@]host[:port][/socket]), creating it
// (without connecting) on first use. Targets that differ only in the socket path share the
// connection; each returned Client's DialDocker uses its own target's socket.
func (p *Pool) Get(target string) (*Client, error) {
	t, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	return p.GetTarget(t)
}

// GetTarget is Get for a parsed target.
func (p *Pool) GetTarget(t Target) (*Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	key := t.connKey()
	l, ok := p.links[key]
	if !ok {
		l = newLink(t, p.opts)
		p.links[key] = l
	}
	return &Client{target: t, link: l, pooled: true}, nil
}

// Close closes every client; Get fails afterwards.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	links := p.links
	p.links = map[string]*link{}
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	return nil
}
