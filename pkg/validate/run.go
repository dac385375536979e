package validate

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Caller calls the method once with kwargs on the given replica (0-based position among the
// replicas) and returns its result.
type Caller func(ctx context.Context, replica int, kwargs map[string]any) (json.RawMessage, error)

// RunOptions adjust Run.
type RunOptions struct {
	Field       string // compare only this dot path of the output
	Replicas    int    // how many replicas Caller can reach (default 1)
	Repeats     int    // calls per input (default 2)
	Concurrency int    // inputs in flight at once (default 4)
	// OnResult is called once per input as it completes (from one goroutine at a time).
	OnResult func(done, total int, r Result)
}

// DefaultConcurrency is how many inputs Run checks at once by default.
const DefaultConcurrency = 4

// Run calls each input Repeats times, one call after the other (so that the second cannot share a
// cache entry the first is still filling), attempt k of input n on replica (n+k) mod Replicas: with
// two or more replicas every input is answered by different ones. It returns the results in input
// order; a cancelled ctx stops it early with ctx's error and the results so far.
func Run(ctx context.Context, inputs []Input, call Caller, o RunOptions) ([]Result, error) {
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.Repeats < 2 {
		o.Repeats = 2
	}
	if o.Concurrency < 1 {
		o.Concurrency = DefaultConcurrency
	}
	results := make([]Result, len(inputs))
	have := make([]bool, len(inputs))
	var mu sync.Mutex
	done := 0
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(o.Concurrency, len(inputs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range next {
				in := inputs[n]
				attempts := make([]Attempt, 0, o.Repeats)
				for k := range o.Repeats {
					rep := (n + k) % o.Replicas
					t0 := time.Now()
					out, err := call(ctx, rep, in.Kwargs)
					a := Attempt{Replica: rep, Output: out, DurationMs: float64(time.Since(t0).Microseconds()) / 1000}
					if err != nil {
						a.Output, a.Error = nil, err.Error()
					}
					attempts = append(attempts, a)
				}
				if ctx.Err() != nil {
					continue // an interrupted call is not a verdict on the environment
				}
				r := Judge(in, attempts, o.Field)
				mu.Lock()
				results[n], have[n] = r, true
				done++
				if o.OnResult != nil {
					o.OnResult(done, len(inputs), r)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for n := range inputs {
		select {
		case next <- n:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		var partial []Result
		for i, r := range results {
			if have[i] {
				partial = append(partial, r)
			}
		}
		return partial, err
	}
	return results, nil
}
