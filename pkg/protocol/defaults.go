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
	DefaultTransport = TransportAuto
	// DefaultSessionTTL expires a session idle this long.
	DefaultSessionTTL = time.Hour
	// DefaultNetwork is the Docker network replicas join when none is given.
	DefaultNetwork = "bridge"
	// DefaultKubeDownWait bounds how long down waits for an environment's pods to be gone.
	DefaultKubeDownWait = 90 * time.Second
)

// How calls reach replicas on Docker hosts (UpOptions.Transport).
const (
	// TransportAuto picks, per replica, direct when it answers at its bridge address, else
	// published (the port is published wherever the daemon host's loopback can be reached, so that
	// the fallback needs no restart).
	TransportAuto = "auto"
	// TransportDirect reaches a container at its bridge address (through SSH for remote hosts).
	TransportDirect = "direct"
	// TransportPublished publishes the port on the daemon host's 127.0.0.1 only, at a port Docker picks.
	TransportPublished = "published"
	// TransportMixed is recorded, never asked for: auto reached some replicas directly and others
	// at their published ports.
	TransportMixed = "mixed"
)

// DefaultOverdueRestart is how long past its deadline a call may keep running before its replica
// restarts itself (UpOptions.OverdueRestart). A sync method cannot be cancelled, so without a limit a
// method that never returns would hold its thread, and its share of the replica, forever; five
// minutes leaves a method that merely ignores a short deadline the time to finish.
const DefaultOverdueRestart = 5 * time.Minute

// FullBinaryName is the full rfenv binary that the lean front (built with the rfenvlean tag, which
// runs plain calls itself) hands every other command line to. It is installed beside the front.
const FullBinaryName = "rfenv-full"

// FrontServicesCommand is the full binary's hidden command that the lean front asks for what needs
// Docker about an environment it calls itself: `__front follow NAME REPLICA` finds where a replica
// that stopped answering runs now (and prints its instance as JSON if it moved); `__front explain
// NAME REPLICA [--after-call]` prints what is known to be wrong with it.
const FrontServicesCommand = "__front"
