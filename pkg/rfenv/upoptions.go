package rfenv

import (
	"time"

	"github.com/rfenv/rfenv/pkg/backend"
)

// UpOptions describe an environment to bring up (defined in pkg/backend, which every backend reads).
type UpOptions = backend.UpOptions

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
