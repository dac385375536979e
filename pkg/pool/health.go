package pool

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Health is what a replica's /health said.
type Health struct {
	Status  string `json:"status"` // ok, starting, failed, busy, draining, or unreachable
	Overdue int    `json:"overdue,omitempty"`
	// With the token (shim protocol 2): the server process's id, and how many calls it runs at once.
	BootID   string `json:"boot_id,omitempty"`
	Capacity int    `json:"capacity,omitempty"`
	InFlight int    `json:"in_flight,omitempty"`
	Queued   int    `json:"queued,omitempty"`
	Error    *struct {
		Type      string `json:"type"`
		Message   string `json:"message"`
		Traceback string `json:"traceback"`
	} `json:"error,omitempty"`
}

// Ready says whether the replica can take calls.
func (h Health) Ready() bool { return h.Status == "ok" }

// probeHealth asks one replica for its health. For a user's http server any answer below 500 means
// it is serving, since it may not define /health at all.
func (p *Pool) probeHealth(ctx context.Context, r *replica) (Health, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/health", nil)
	if p.opts.Kind == KindFunction {
		// With the token the shim also says who it is (boot id) and what it can take.
		req.Header.Set("Authorization", p.authz)
	}
	resp, err := r.transport.RoundTrip(req)
	if err != nil {
		if ctx.Err() != nil && !isDialError(err) {
			err = fmt.Errorf("no answer to /health within 2s: %w", err)
		} else if ctx.Err() != nil {
			err = fmt.Errorf("could not connect within 2s (is its container stopped or removed?): %w", err)
		}
		return Health{Status: "unreachable"}, err
	}
	data, err := readBody(resp.Body)
	resp.Body.Close()
	if err != nil {
		return Health{Status: "unreachable"}, err
	}
	var h Health
	if json.Unmarshal(data, &h) != nil || h.Status == "" {
		h.Status = "unknown"
	}
	if p.opts.Kind == KindHTTP {
		if resp.StatusCode < 500 {
			h.Status = "ok"
		} else if h.Status == "unknown" {
			h.Status = "failed"
		}
	} else if resp.StatusCode == http.StatusOK && h.Status == "unknown" {
		h.Status = "ok"
	}
	if h.BootID != "" {
		r.bootID.Store(&h.BootID)
	}
	return h, nil
}

// markDown takes a replica out of rotation and probes it with backoff until it answers healthy.
func (p *Pool) markDown(r *replica, cause error) {
	r.setReason(shortError(cause))
	r.healthy.Store(false)
	p.redispatch() // calls waiting only for this replica fail now, not at their deadline
	p.startProbe(r)
}

// checkBusy asks a replica whose call hit its deadline whether a sync method is still running there;
// if so it leaves rotation until that method returns.
func (p *Pool) checkBusy(r *replica) {
	h, err := p.probeHealth(context.Background(), r)
	if err == nil && h.Status == "busy" {
		r.setReason("busy: a call is running past its deadline")
		r.busy.Store(true)
		p.redispatch()
		p.startProbe(r)
	}
}

// suspect probes a replica whose call got no answer by its deadline; one that does not answer
// /health within a second is taken out of rotation until it does.
func (p *Pool) suspect(r *replica) {
	if !r.available() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	h, err := p.probeHealth(ctx, r)
	if err != nil {
		p.markDown(r, fmt.Errorf("no answer to a call or to /health: %w", err))
		return
	}
	if h.Status == "busy" {
		r.setReason("busy: a call is running past its deadline")
		r.busy.Store(true)
		p.startProbe(r)
	}
}

func (p *Pool) startProbe(r *replica) {
	if !r.probing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.probing.Store(false)
		delay := 50 * time.Millisecond
		t := time.NewTimer(delay)
		defer t.Stop()
		for {
			select {
			case <-p.closed:
				return
			case <-t.C:
			}
			h, err := p.probeHealth(context.Background(), r)
			if err == nil && h.Ready() && r.rejected.Load() {
				// /health needs no token, so any shim answers it: ask for the token too.
				if err = p.getJSON(context.Background(), r, "/stats", &shimStats{}); err == nil {
					r.rejected.Store(false)
				}
			}
			if err == nil && h.Ready() {
				r.healthy.Store(true)
				r.busy.Store(false)
				p.redispatch()
				p.health.notify()
				p.opts.Logger.Debug("replica rejoined", "env", p.opts.Name, "replica", r.ep.Index)
				return
			}
			if err != nil {
				r.setReason(shortError(err))
			} else {
				r.setReason(h.Status)
			}
			delay = min(delay*2, 2*time.Second)
			t.Reset(delay)
		}
	}()
}

func shortError(err error) string {
	if err == nil {
		return ""
	}
	return truncate(err.Error(), 160)
}
