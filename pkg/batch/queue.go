package batch

import "sync"

// queue feeds a batch's workers. Lines without a session are ready at once; the lines of one session
// form a chain that runs one line at a time, in input order (a session's steps must not overtake
// each other), while other sessions and sessionless lines go on beside it. A line waiting for its
// predecessor holds no worker.
type queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	ready  []job
	chains map[string]*chain
	live   int  // admitted lines not yet finished (ready, running or waiting in a chain)
	closed bool // the reader is done
	halted bool // the batch was cancelled: the reader admits nothing more
	limit  int  // ready lines beyond which the reader waits (back-pressure on the input)
}

type chain struct{ pending []job }

func newQueue(limit int) *queue {
	q := &queue{chains: map[string]*chain{}, limit: limit}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// push admits j, waiting while enough lines are ready; it reports false once the batch was halted.
func (q *queue) push(j job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ready) >= q.limit && !q.halted {
		q.cond.Wait()
	}
	if q.halted {
		return false
	}
	q.live++
	if j.session != "" {
		if ch, ok := q.chains[j.session]; ok {
			ch.pending = append(ch.pending, j)
			return true
		}
		q.chains[j.session] = &chain{}
	}
	q.ready = append(q.ready, j)
	q.cond.Broadcast()
	return true
}

// pop returns the next ready line, waiting for one; false when every admitted line is finished and
// the reader is done.
func (q *queue) pop() (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ready) == 0 {
		if q.closed && q.live == 0 {
			return job{}, false
		}
		q.cond.Wait()
	}
	j := q.ready[0]
	q.ready = q.ready[1:]
	q.cond.Broadcast() // room for the reader
	return j, true
}

// done marks j finished, making its session's next line ready.
func (q *queue) done(j job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.live--
	if j.session != "" {
		ch := q.chains[j.session]
		if len(ch.pending) > 0 {
			q.ready = append(q.ready, ch.pending[0])
			ch.pending = ch.pending[1:]
		} else {
			delete(q.chains, j.session)
		}
	}
	q.cond.Broadcast()
}

// close says the reader admits no more lines.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

// halt stops admitting lines (the batch's context ended); admitted ones still get their lines.
func (q *queue) halt() {
	q.mu.Lock()
	q.halted = true
	q.cond.Broadcast()
	q.mu.Unlock()
}
