package backend

import (
	"io"
	"time"
)

// UpOptions describe an environment to bring up. The zero value of each field means its default.
type UpOptions struct {
	Name          string            // default: from the image, "affine:latest" → "affine"
	Replicas      int               // default 1
	Hosts         []string          // host specs; default localhost
	Env           map[string]string // environment variables for the containers (values are secrets)
	Secrets       map[string]string // like Env, but kept out of the container's configuration
	Type          string            // "function" or "http"; default: the image's rfenv.type label
	Balancer      string            // random (default), round_robin, least_busy
	ForceRecreate bool
	ReadyTimeout  time.Duration // default 60s
	Memory        int64         // bytes
	NanoCPUs      int64
	GPUs          string // "all" or a count
	Network       string
	Volumes       []string
	Labels        map[string]string
	NoTransfer    bool // do not send the image to hosts that lack it
	Pull          bool // pull the image on each host first (a local copy is used if the pull fails)
	// PullPolicy is the image pull policy on k8s:// hosts: IfNotPresent (default), Always or Never.
	PullPolicy string
	// MaxInflight bounds the calls one process keeps in flight on each replica; calls beyond it wait
	// in a FIFO queue (default pool.DefaultMaxInflight).
	MaxInflight int
	// MaxSessions bounds the live sessions per replica (default: unbounded).
	MaxSessions int
	// SessionTTL expires a session idle this long (default 1h).
	SessionTTL time.Duration
	// OverdueRestart restarts a replica whose call has not returned this long after its deadline.
	OverdueRestart time.Duration
	// Transport is how calls reach replicas on Docker hosts: "auto" (default), "direct" or "published".
	Transport string
	// Progress receives human-readable progress lines (image transfer, readiness); nil discards.
	Progress io.Writer
}

// LogsOptions choose what Logs shows.
type LogsOptions struct {
	// Replicas are the indices of the replicas to show; empty means every replica.
	Replicas []int
	// Follow keeps streaming new output, from all the chosen replicas at once, until ctx is done or
	// every container has stopped.
	Follow bool
	// Tail limits each replica's past output: more than 0 shows its last Tail lines, 0 all of it,
	// and less than 0 none (with Follow: only what is written from now on).
	Tail int
	// Timestamps puts the time Docker received each line before it.
	Timestamps bool
}
