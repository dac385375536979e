package pool

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/rfenv/rfenv/pkg/errs"
)

// Balancing strategies.
const (
	Random     = "random"
	RoundRobin = "round_robin"
	LeastBusy  = "least_busy"
)

// Strategies lists the valid strategies, for flag help and validation.
var Strategies = []string{Random, RoundRobin, LeastBusy}

// ValidateStrategy checks a strategy name.
func ValidateStrategy(s string) error {
	for _, v := range Strategies {
		if s == v {
			return nil
		}
	}
	return errs.New(errs.Usage, "unknown balancing strategy %q: use random, round_robin or least_busy", s)
}

// chooser picks one of the candidates, which are all available.
type chooser interface {
	choose(cands []*replica) *replica
}

type randomChooser struct{}

func (randomChooser) choose(c []*replica) *replica { return c[rand.IntN(len(c))] }

// roundRobinChooser counts locally, or through next when calls from many processes must share one
// rotation (the CLI passes a counter kept beside the state file).
type roundRobinChooser struct {
	local atomic.Uint64
	next  func() (uint64, error)
}

func (rr *roundRobinChooser) choose(c []*replica) *replica {
	var n uint64
	if rr.next != nil {
		if v, err := rr.next(); err == nil {
			n = v
		} else {
			n = rr.local.Add(1) - 1
		}
	} else {
		n = rr.local.Add(1) - 1
	}
	return c[n%uint64(len(c))]
}

// leastBusyChooser takes the less loaded of two random replicas ("power of two choices"): nearly as
// good as scanning all of them, without a hot spot on the single least-loaded one.
type leastBusyChooser struct{}

func (leastBusyChooser) choose(c []*replica) *replica {
	if len(c) == 1 {
		return c[0]
	}
	i := rand.IntN(len(c))
	j := rand.IntN(len(c) - 1)
	if j >= i {
		j++
	}
	a, b := c[i], c[j]
	if b.inFlight.Load() < a.inFlight.Load() {
		return b
	}
	return a
}

func newChooser(strategy string, counter func() (uint64, error)) chooser {
	switch strategy {
	case RoundRobin:
		return &roundRobinChooser{next: counter}
	case LeastBusy:
		return leastBusyChooser{}
	default:
		return randomChooser{}
	}
}
