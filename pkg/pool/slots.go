package pool

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// DefaultMaxInflight is how many calls one process keeps in flight on one replica before further
// calls wait in the pool's queue. It bounds the connections a burst opens (a replica's accept queue
// overflowing is what turned a burst of 16,000 calls into dial timeouts). Measured (BENCHMARKS.md,
// item 12: 16,000 calls of 2 s on 2 replicas): 1024 finishes within 1.1x of what the budget allows,
// with about 10 MB (library) to 17 MB (CLI) of client memory per thousand calls waiting or in
// flight; 256 takes four times as long; 4096 is faster but saturates this 2-core machine (8,192
// connections) and leaves the shim's default async limit no room for a second process.
const DefaultMaxInflight = 1024

// dispatcher hands replica slots to calls: a call takes a free slot on an available replica at
// once, or waits in one FIFO queue for the pool, first come first served. Invariant (under mu): no
// waiting call accepts a replica that has a free slot, so a new call may take any free slot it finds
// without jumping the queue.
type dispatcher struct {
	mu      sync.Mutex
	waiters list.List // of *waiter, oldest first
}

// waiter is one call waiting for a slot.
type waiter struct {
	accept  func(*replica) bool // which replicas this call may use (not yet tried, or its pinned one)
	pinned  bool                // a session's call: a busy replica (a call overdue there) still serves it
	granted chan *replica       // buffered: the replica whose slot it got, or nil when none can serve it
	elem    *list.Element
	since   time.Time
}

// usable reports whether r may take calls: in rotation, or for a pinned call merely healthy (a
// replica marked busy by an overdue sync call still runs a session's calls on its other threads).
func (r *replica) usable(pinned bool) bool {
	if pinned {
		return r.healthy.Load()
	}
	return r.available()
}

// free reports whether r can take one more call now. Called with mu held.
func (r *replica) free(pinned bool) bool { return r.usable(pinned) && r.used < r.limit }

// acquire takes a slot on a replica that accept allows, waiting in the queue while every such
// replica is at its budget. It returns nil (and no error) when no available replica is acceptable at
// all, and the context's error when the call's deadline passed while it waited.
func (p *Pool) acquire(ctx context.Context, accept func(*replica) bool, pinned bool) (*replica, time.Duration, error) {
	d := &p.disp
	d.mu.Lock()
	var buf [16]*replica
	cands := buf[:0]
	anyAvailable := false
	for _, r := range p.list() {
		if !accept(r) || !r.usable(pinned) {
			continue
		}
		anyAvailable = true
		if r.used < r.limit {
			cands = append(cands, r)
		}
	}
	if len(cands) > 0 {
		r := p.chooser.choose(cands)
		r.used++
		d.mu.Unlock()
		return r, 0, nil
	}
	if !anyAvailable {
		d.mu.Unlock()
		return nil, 0, nil
	}
	w := &waiter{accept: accept, pinned: pinned, granted: make(chan *replica, 1), since: time.Now()}
	w.elem = d.waiters.PushBack(w)
	d.mu.Unlock()

	select {
	case r := <-w.granted:
		return r, time.Since(w.since), nil
	case <-ctx.Done():
		d.mu.Lock()
		if w.elem != nil {
			d.waiters.Remove(w.elem)
			w.elem = nil
			d.mu.Unlock()
			return nil, time.Since(w.since), ctx.Err()
		}
		d.mu.Unlock()
		// Granted at the same moment: give the slot back to the next in line.
		if r := <-w.granted; r != nil {
			p.release(r)
		}
		return nil, time.Since(w.since), ctx.Err()
	}
}

// release returns a slot taken by acquire and hands it to the first waiting call that can use it.
func (p *Pool) release(r *replica) {
	d := &p.disp
	d.mu.Lock()
	r.used--
	p.dispatchLocked(false)
	d.mu.Unlock()
}

// redispatch hands free slots to waiting calls after replicas changed (one rejoined, one left, the
// list was replaced); waiters that no available replica can serve any more are woken with nil so
// that they fail at once instead of at their deadline.
func (p *Pool) redispatch() {
	d := &p.disp
	d.mu.Lock()
	p.dispatchLocked(true)
	d.mu.Unlock()
}

// dispatchLocked grants free slots to waiters in FIFO order. It stops as soon as no replica has a
// free slot, so a release costs O(1) when the oldest waiter can take it. With checkDead it also
// scans every waiter for one that has no available replica left.
func (p *Pool) dispatchLocked(checkDead bool) {
	d := &p.disp
	reps := p.list()
	for e := d.waiters.Front(); e != nil; {
		next := e.Next()
		w := e.Value.(*waiter)
		anyFree := false
		for _, r := range reps {
			if r.free(true) { // the most any waiter could use
				anyFree = true
				break
			}
		}
		if !anyFree && !checkDead {
			return
		}
		var buf [16]*replica
		cands := buf[:0]
		anyAvailable := false
		for _, r := range reps {
			if r.free(w.pinned) && w.accept(r) {
				cands = append(cands, r)
			}
		}
		switch {
		case len(cands) > 0:
			r := p.chooser.choose(cands)
			r.used++
			d.waiters.Remove(e)
			w.elem = nil
			w.granted <- r
		case checkDead:
			for _, r := range reps {
				if r.usable(w.pinned) && w.accept(r) {
					anyAvailable = true
					break
				}
			}
			if !anyAvailable {
				d.waiters.Remove(e)
				w.elem = nil
				w.granted <- nil
			}
		}
		e = next
	}
}

// queued is how many calls wait for a slot.
func (p *Pool) queued() int {
	p.disp.mu.Lock()
	defer p.disp.mu.Unlock()
	return p.disp.waiters.Len()
}

// shrinkLimit lowers r's budget to the calls it runs now (at least one): the server said it is full
// (429), or a connection could not be made while others were answering. Budgets grow back by one per
// success (growLimit), so a replica that was only briefly saturated returns to the full budget.
func (p *Pool) shrinkLimit(r *replica) {
	p.disp.mu.Lock()
	r.limit = max(1, min(r.limit, r.used))
	r.shrunk.Store(r.limit < p.opts.MaxInflight)
	p.disp.mu.Unlock()
}

func (p *Pool) growLimit(r *replica) {
	if !r.shrunk.Load() { // the common case costs no lock
		return
	}
	p.disp.mu.Lock()
	if r.limit < p.opts.MaxInflight {
		r.limit++
		p.dispatchLocked(false)
	}
	r.shrunk.Store(r.limit < p.opts.MaxInflight)
	p.disp.mu.Unlock()
}
