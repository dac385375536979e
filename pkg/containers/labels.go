// Package containers runs an environment's replicas on one Docker daemon: it creates, starts, watches
// and removes labelled containers, and never touches a container it did not label.
package containers

import "github.com/rfenv/rfenv/pkg/protocol"

// Labels on every container rfenv starts (defined in pkg/protocol, shared with the other backends).
const (
	LabelManaged    = protocol.LabelManaged
	LabelEnv        = protocol.LabelEnv
	LabelReplica    = protocol.LabelReplica
	LabelConfigHash = protocol.LabelConfigHash
	LabelState      = protocol.LabelState
)

// Labels on images that rfenv builds (defined in pkg/protocol).
const (
	ImageLabelType        = protocol.LabelType
	ImageLabelPort        = protocol.LabelPort
	ImageLabelShimVersion = protocol.LabelShimVersion
)
