package protocol

import "time"

// The library's defaults: the single source for pkg/rfenv, every backend and cmd/config.
const (
	// DefaultHost is where replicas run when no host is given.
	DefaultHost = "localhost"
	// DefaultReplicas is how many replicas up starts when no count is given.
	DefaultReplicas = 1
	// DefaultBalancer is the load-balancing strategy when none is given.
	DefaultBalancer = "random"
	// DefaultCallTimeout bounds a call whose context has no deadline, so that no call waits forever.
	DefaultCallTimeout = 5 * time.Minute
	// DefaultReadyTimeout bounds how long up waits for replicas to answer /health as ready.
	DefaultReadyTimeout = 60 * time.Second
	// DefaultBaseImage is the FROM of the Dockerfile rfenv writes when a directory has none.
	DefaultBaseImage = "python:3.12-slim"
	// DefaultProgress is the build progress output mode.
	DefaultProgress = "auto"
	// DefaultPullPolicy is the image pull policy of pods on k8s:// hosts.
	DefaultPullPolicy = "IfNotPresent"
	// DefaultTransport is how calls reach replicas on Docker hosts.
	DefaultTransport = "auto"
	// DefaultSessionTTL expires a session idle this long.
	DefaultSessionTTL = time.Hour
	// DefaultNetwork is the Docker network replicas join when none is given.
	DefaultNetwork = "bridge"
	// DefaultKubeDownWait bounds how long down waits for an environment's pods to be gone.
	DefaultKubeDownWait = 90 * time.Second
)
