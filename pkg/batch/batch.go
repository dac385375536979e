// Package batch runs many calls of one method from JSON lines, a bounded number at once, and writes
// one JSON line per input in input order: the command-line form of gathering many calls.
package batch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/pool"
)

// MaxLine is the longest input line accepted (a call's arguments).
const MaxLine = 64 << 20

// Caller is what a batch calls: a pool.
type Caller interface {
	Encode(req pool.Request) ([]byte, error)
	CallEncoded(ctx context.Context, method string, body []byte) (json.RawMessage, error)
}

// Options configure a batch.
type Options struct {
	Method      string
	Concurrency int           // calls at once (default 16)
	Timeout     time.Duration // per call; 0 = the pool's default
	// Progress, if set, is called after each line completes with the counts so far.
	Progress func(done, failed int)
	// Total, if set, is called once the number of input lines is known (input fully read).
	Total func(n int)
}

// Line is one output line.
type Line struct {
	Index  int             `json:"index"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *LineError      `json:"error,omitempty"`
}

// LineError describes a failed line.
type LineError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Kind    string `json:"kind"` // usage, not_found, method_raised, infra, deadline, interrupted
}

// Summary counts a batch's outcome.
type Summary struct {
	Total, Succeeded, Failed int
	// FirstError is the first failed line's error (in input order), for the exit code.
	FirstError error
}

type job struct {
	index   int
	line    []byte
	session string // the line's "session" key: its calls run in order, on the session's replica
}

// SessionCaller is a Caller that can also pin calls to a session's replica (the library's Env).
type SessionCaller interface {
	Caller
	CallSession(ctx context.Context, key, method string, body []byte) (json.RawMessage, error)
}

// Run reads JSON lines from in (each an object of keyword arguments, or {"args": [...],
// "kwargs": {...}}), calls opts.Method for each and writes one line per input to out, in input order.
// Blank lines are skipped and not counted. A line that is not valid JSON gets an error line; it does
// not stop the batch. Cancelling ctx stops reading and cancels calls in flight (in the servers too).
func Run(ctx context.Context, c Caller, in io.Reader, out io.Writer, opts Options) (Summary, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	q := newQueue(2 * opts.Concurrency)
	results := make(chan Line, opts.Concurrency)
	var readErr error
	var total int
	stop := context.AfterFunc(ctx, q.halt)
	defer stop()
	go func() {
		defer q.close()
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), MaxLine)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			if !q.push(job{index: total, line: append([]byte(nil), line...), session: sessionOf(line)}) {
				return
			}
			total++
		}
		if err := sc.Err(); err != nil {
			readErr = errs.New(errs.Usage, "reading batch input after line %d: %v", total, err)
		}
		if opts.Total != nil {
			opts.Total(total)
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < opts.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, ok := q.pop()
				if !ok {
					return
				}
				results <- runOne(ctx, c, opts, j)
				q.done(j)
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	// Reorder: hold results until every earlier index is written.
	var sum Summary
	pending := map[int]Line{}
	next := 0
	bw := bufio.NewWriter(out)
	var writeErr error
	for res := range results {
		pending[res.Index] = res
		sum.Total++
		if res.Error != nil {
			sum.Failed++
		} else {
			sum.Succeeded++
		}
		if opts.Progress != nil {
			opts.Progress(sum.Succeeded+sum.Failed, sum.Failed)
		}
		for {
			l, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			if l.Error != nil && sum.FirstError == nil {
				sum.FirstError = lineErr(l.Error)
			}
			if writeErr == nil {
				data, _ := json.Marshal(l)
				bw.Write(append(data, '\n'))
				// Flush each line so that a consumer sees results as they arrive, in order.
				writeErr = bw.Flush()
			}
			next++
		}
	}
	if writeErr != nil {
		return sum, fmt.Errorf("writing batch output: %w", writeErr)
	}
	if readErr != nil {
		return sum, readErr
	}
	if ctx.Err() != nil {
		return sum, errs.Wrap(errs.Interrupted, fmt.Errorf("batch interrupted after %d of its lines: %w", sum.Total, context.Cause(ctx)))
	}
	return sum, nil
}

func runOne(ctx context.Context, c Caller, opts Options, j job) Line {
	req, err := decodeLine(j.line)
	if err != nil {
		return errorLine(j.index, err)
	}
	req.Method = opts.Method
	body, err := c.Encode(req)
	if err != nil {
		return errorLine(j.index, err)
	}
	cctx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	var res json.RawMessage
	if j.session != "" {
		sc, ok := c.(SessionCaller)
		if !ok {
			return errorLine(j.index, errs.New(errs.Usage, "this batch cannot run lines with a \"session\""))
		}
		res, err = sc.CallSession(cctx, j.session, opts.Method, body)
	} else {
		res, err = c.CallEncoded(cctx, opts.Method, body)
	}
	if err != nil {
		return errorLine(j.index, err)
	}
	return Line{Index: j.index, Result: res}
}

// sessionOf is a line's "session" key: a string at the top level of the object. It routes the
// line's call and is not passed to the method (a method with a parameter named session takes it in
// the envelope form's "kwargs").
func sessionOf(line []byte) string {
	if !bytes.Contains(line, []byte(`"session"`)) {
		return ""
	}
	var l struct {
		Session string `json:"session"`
	}
	if json.Unmarshal(line, &l) != nil {
		return ""
	}
	return l.Session
}

// decodeLine reads one input line: {"args": [...], "kwargs": {...}} when the object has only those
// keys (with the right types), otherwise the object itself is the keyword arguments.
func decodeLine(line []byte) (pool.Request, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return pool.Request{}, errs.New(errs.Usage, "line is not a JSON object: %v", err)
	}
	if obj == nil {
		return pool.Request{}, errs.New(errs.Usage, "line is null, not a JSON object")
	}
	delete(obj, "session") // routing, not an argument (see sessionOf)
	rawArgs, hasArgs := obj["args"]
	rawKw, hasKw := obj["kwargs"]
	envelope := (hasArgs || hasKw) && len(obj) == btoi(hasArgs)+btoi(hasKw)
	if envelope {
		var args []json.RawMessage
		var kw map[string]json.RawMessage
		okArgs := !hasArgs || json.Unmarshal(rawArgs, &args) == nil
		okKw := !hasKw || json.Unmarshal(rawKw, &kw) == nil
		if okArgs && okKw {
			req := pool.Request{}
			for _, a := range args {
				req.Args = append(req.Args, a)
			}
			if kw != nil {
				req.Kwargs = kw
			}
			return req, nil
		}
	}
	return pool.Request{Kwargs: obj}, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func errorLine(index int, err error) Line {
	le := &LineError{Type: "Error", Message: err.Error(), Kind: kindName(err)}
	var ce *pool.CallError
	if errors.As(err, &ce) && ce.Type != "" {
		le.Type, le.Message = ce.Type, ce.Message
	}
	return Line{Index: index, Error: le}
}

func kindName(err error) string {
	switch errs.KindOf(err) {
	case errs.Usage:
		return "usage"
	case errs.NotFound:
		return "not_found"
	case errs.MethodRaised:
		return "method_raised"
	case errs.Deadline:
		return "deadline"
	case errs.Interrupted:
		return "interrupted"
	case errs.Conflict:
		return "conflict"
	case errs.SessionLost:
		return "session_lost"
	}
	return "infra"
}

var kinds = map[string]*errs.Kind{
	"usage": errs.Usage, "not_found": errs.NotFound, "method_raised": errs.MethodRaised,
	"deadline": errs.Deadline, "interrupted": errs.Interrupted, "conflict": errs.Conflict, "infra": errs.Infra, "session_lost": errs.SessionLost,
}

func lineErr(le *LineError) error {
	return errs.New(kinds[le.Kind], "%s: %s", le.Type, le.Message)
}
