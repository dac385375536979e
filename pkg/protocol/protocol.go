// Package protocol is what every part of rfenv shares about the shim and the replicas it runs: the
// labels on images and containers, the server kinds, the header carrying a call's deadline, the
// port, the shim's protocol version and the library's defaults. It imports nothing of rfenv's but
// the shim's version, so the shim, the build, every backend and cmd/config can depend on it.
package protocol

import "github.com/rfenv/rfenv/shim"

// Server kinds, as images are labelled (LabelType) and the state file records them.
const (
	KindFunction = "function" // rfenv's shim: POST /call with a method envelope
	KindHTTP     = "http"     // a user's own server: POST /METHOD with the keyword arguments
)

// ValidKind says whether k names a server kind.
func ValidKind(k string) bool { return k == KindFunction || k == KindHTTP }

// Labels on the images rfenv builds.
const (
	LabelType        = "rfenv.type"         // KindFunction or KindHTTP
	LabelPort        = "rfenv.port"         // the server's port in the container
	LabelShimVersion = "rfenv.shim.version" // the embedded shim's protocol version
)

// Labels on every container (and, on Kubernetes, every object) rfenv starts, so that they can always
// be found and removed.
const (
	LabelManaged    = "rfenv.managed"     // "true"
	LabelEnv        = "rfenv.env"         // the environment's name
	LabelReplica    = "rfenv.replica"     // the replica's index (Docker only)
	LabelConfigHash = "rfenv.config-hash" // keyed hash of image and settings, to decide reuse
	LabelState      = "rfenv.state"       // which state directory owns it (see state.StateID)
)

// TimeoutHeader carries the caller's remaining time (milliseconds, relative) to the server, which
// enforces it.
const TimeoutHeader = "X-Rfenv-Timeout-Ms"

// BootHeader carries the boot id a session's call expects; a server with another one (it restarted)
// answers 410 without running the method.
const BootHeader = "X-Rfenv-Boot"

// ShimVersion is the wire-protocol version of the embedded shim (the value of LabelShimVersion).
var ShimVersion = shim.Version

// DefaultPort is the port the shim listens on unless RFENV_PORT says otherwise.
const DefaultPort = shim.DefaultPort

// Environment variables rfenv sets on every replica.
const (
	EnvToken   = "RFENV_TOKEN"
	EnvPort    = "RFENV_PORT"
	EnvName    = "RFENV_ENV_NAME"
	EnvReplica = "RFENV_REPLICA"
	// EnvReservedPrefix is reserved for rfenv: users cannot set variables that start with it.
	EnvReservedPrefix = "RFENV_"
)
