package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// InstanceStats is one replica's view: counts come from its server, so they include calls made by
// every process, while Healthy is probed now.
type InstanceStats struct {
	Index    int     `json:"index"`
	Host     string  `json:"host"`
	Address  string  `json:"address"`
	Port     int     `json:"port"`
	Healthy  bool    `json:"healthy"`
	Status   string  `json:"status"`
	Requests int64   `json:"requests"`
	InFlight int64   `json:"in_flight"`
	Errors   int64   `json:"errors"`
	Overdue  int64   `json:"overdue"`
	MeanMs   float64 `json:"mean_ms"`
	P50Ms    float64 `json:"p50_ms"`
	UptimeS  float64 `json:"uptime_s"`
	// Capacity is how many calls its server runs at once (shim protocol 2).
	Capacity int `json:"capacity,omitempty"`
	// OverdueRestarts counts the times its server restarted itself because a call ran too far past
	// its deadline (up --overdue-restart); LastRestart says which call, the last time.
	OverdueRestarts int    `json:"overdue_restarts,omitempty"`
	LastRestart     string `json:"last_restart,omitempty"`
	// Sessions is how many live sessions are pinned to it (filled in by the library's Env.Stats).
	Sessions int `json:"sessions"`
	// Budget is how many calls this process keeps in flight on it at most.
	Budget    int    `json:"budget"`
	Error     string `json:"error,omitempty"`
	hasServer bool
}

// Stats summarises a pool.
type Stats struct {
	Name             string `json:"name"`
	TotalInstances   int    `json:"total_instances"`
	HealthyInstances int    `json:"healthy_instances"`
	TotalRequests    int64  `json:"total_requests"`
	TotalSessions    int    `json:"total_sessions"`
	// Queued is how many of this process's calls wait for a free slot.
	Queued    int             `json:"queued"`
	Instances []InstanceStats `json:"instances"`
}

type shimStats struct {
	Requests int64   `json:"requests"`
	InFlight int64   `json:"in_flight"`
	Errors   int64   `json:"errors"`
	Overdue  int64   `json:"overdue"`
	UptimeS  float64 `json:"uptime_s"`
	Capacity int     `json:"capacity"`
	Restarts struct {
		Overdue int `json:"overdue"`
		Last    *struct {
			Method   string  `json:"method"`
			OverdueS float64 `json:"overdue_s"`
		} `json:"last"`
	} `json:"restarts"`
	LatencyMs struct {
		Mean float64 `json:"mean"`
		P50  float64 `json:"p50"`
	} `json:"latency_ms"`
}

// Stats asks every replica for its health and counters, all at once.
func (p *Pool) Stats(ctx context.Context) Stats {
	replicas := p.list()
	out := Stats{Name: p.opts.Name, TotalInstances: len(replicas), Instances: make([]InstanceStats, len(replicas))}
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out.Instances[i] = p.instanceStats(ctx, r)
		}()
	}
	wg.Wait()
	out.Queued = p.queued()
	for _, s := range out.Instances {
		if s.Healthy {
			out.HealthyInstances++
		}
		out.TotalRequests += s.Requests
	}
	return out
}

func (p *Pool) instanceStats(ctx context.Context, r *replica) InstanceStats {
	s := InstanceStats{Index: r.ep.Index, Host: r.ep.Host, Budget: p.opts.MaxInflight}
	if h, port, err := net.SplitHostPort(r.ep.Address); err == nil {
		s.Address = h
		s.Port, _ = strconv.Atoi(port)
	}
	h, err := p.probeHealth(ctx, r)
	s.Status = h.Status
	if err != nil {
		s.Error = shortError(err)
		return s
	}
	s.Healthy = h.Ready()
	if h.Status == "busy" && r.available() {
		// Fresh evidence the other way: a call runs there past its deadline (the check after that
		// call can come before the server started it, on a loaded machine). Out of rotation until
		// it returns, as checkBusy would have put it.
		r.setReason("busy: a call is running past its deadline")
		r.busy.Store(true)
		p.redispatch()
		p.startProbe(r)
	}
	if s.Healthy && !r.healthy.Load() && !r.rejected.Load() {
		// Fresh evidence: a replica out of rotation answers ok now (its probe may be backing off).
		r.healthy.Store(true)
		r.busy.Store(false)
		p.redispatch()
		p.health.notify()
	}
	if h.Error != nil {
		s.Error = h.Error.Type + ": " + h.Error.Message
	}
	if p.opts.Kind == KindHTTP {
		// A user's server has no /stats: report what this process saw.
		s.Requests, s.InFlight, s.Errors = r.requests.Load(), r.inFlight.Load(), r.failures.Load()
		return s
	}
	var st shimStats
	if err := p.getJSON(ctx, r, "/stats", &st); err != nil {
		s.Error = shortError(err)
		var ce *CallError
		if errors.As(err, &ce) && ce.Status == http.StatusUnauthorized {
			// Some shim answers /health at the address, but not with this environment's token.
			s.Healthy, s.Status = false, "unauthorized"
		}
		return s
	}
	s.hasServer = true
	s.Requests, s.InFlight, s.Errors, s.Overdue = st.Requests, st.InFlight, st.Errors, st.Overdue
	s.MeanMs, s.P50Ms, s.UptimeS = st.LatencyMs.Mean, st.LatencyMs.P50, st.UptimeS
	s.Capacity, s.OverdueRestarts = st.Capacity, st.Restarts.Overdue
	if l := st.Restarts.Last; l != nil {
		s.LastRestart = fmt.Sprintf("%s ran %.1fs past its deadline", l.Method, l.OverdueS)
	}
	return s
}

// getJSON GETs an authenticated endpoint of one replica.
func (p *Pool) getJSON(ctx context.Context, r *replica, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	req.Header.Set("Authorization", p.authz)
	resp, err := r.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := readBody(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return decodeCallError(resp.StatusCode, data, path, r.ep.Index)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("malformed %s reply from %s: %w", path, r.name(), err)
	}
	return nil
}

// Probe reports each replica's health now, and updates the pool's rotation to match.
func (p *Pool) Probe(ctx context.Context) []Health {
	replicas := p.list()
	out := make([]Health, len(replicas))
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := p.probeHealth(ctx, r)
			out[i] = h
			if err != nil || !h.Ready() {
				if err == nil {
					err = fmt.Errorf("%s", h.Status)
				}
				p.markDown(r, err)
			}
		}()
	}
	wg.Wait()
	return out
}

// HealthOf probes the replica with the given index.
func (p *Pool) HealthOf(ctx context.Context, index int) (Health, error) {
	for _, r := range p.list() {
		if r.ep.Index == index {
			return p.probeHealth(ctx, r)
		}
	}
	return Health{}, fmt.Errorf("no replica %d", index)
}
