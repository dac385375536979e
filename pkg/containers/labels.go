// Package containers runs an environment's replicas on one Docker daemon: it creates, starts, watches
// and removes labelled containers, and never touches a container it did not label.
package containers

// Labels on every container rfenv starts, so they can always be found and removed.
const (
	LabelManaged    = "rfenv.managed"     // "true"
	LabelEnv        = "rfenv.env"         // the environment's name
	LabelReplica    = "rfenv.replica"     // the replica's index
	LabelConfigHash = "rfenv.config-hash" // keyed hash of image and settings, to decide reuse
	LabelState      = "rfenv.state"       // which state directory owns it (see state.StateID)
)

// Labels on images that rfenv builds.
const (
	ImageLabelType        = "rfenv.type"         // "function" or "http"
	ImageLabelPort        = "rfenv.port"         // the server's port in the container
	ImageLabelShimVersion = "rfenv.shim.version" // the embedded shim's protocol version
)
