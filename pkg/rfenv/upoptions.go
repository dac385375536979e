package rfenv

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

// UpOption changes UpOptions.
type UpOption func(*UpOptions)

// WithUpOptions replaces all options at once (what the CLI uses).
func WithUpOptions(o UpOptions) UpOption { return func(u *UpOptions) { *u = o } }

// WithName names the environment.
func WithName(name string) UpOption { return func(u *UpOptions) { u.Name = name } }

// WithReplicas sets how many replicas run.
func WithReplicas(n int) UpOption { return func(u *UpOptions) { u.Replicas = n } }

// WithHosts places replicas on these hosts, in order, wrapping around.
func WithHosts(hosts ...string) UpOption { return func(u *UpOptions) { u.Hosts = hosts } }

// WithEnv sets environment variables of the containers.
func WithEnv(env map[string]string) UpOption { return func(u *UpOptions) { u.Env = env } }

// WithBalancer chooses the load-balancing strategy.
func WithBalancer(s string) UpOption { return func(u *UpOptions) { u.Balancer = s } }

// WithType overrides the environment type recorded in the image.
func WithType(t string) UpOption { return func(u *UpOptions) { u.Type = t } }

// WithForceRecreate replaces existing replicas even when they match.
func WithForceRecreate() UpOption { return func(u *UpOptions) { u.ForceRecreate = true } }

// WithReadyTimeout bounds the wait for replicas to become ready.
func WithReadyTimeout(d time.Duration) UpOption { return func(u *UpOptions) { u.ReadyTimeout = d } }
