// Package shim embeds the in-container HTTP server (server.py) that rfenv copies into
// function-based images as ServerPath and runs as the container's PID 1 with
// exec-form CMD ["python3", ServerPath].
//
// The wire protocol it speaks is "version 1" of ARCHITECTURE.md. Version must equal
// SHIM_VERSION in server.py (checked by TestVersionMatchesServer); bump both together
// when the protocol changes, since images are labelled rfenv.shim.version=<Version>.
package shim

import _ "embed"

// Server is the source of server.py.
//
//go:embed server.py
var Server []byte

// Version is the wire-protocol version the embedded server speaks.
const Version = "1"

// DefaultPort is the port the shim listens on unless RFENV_PORT says otherwise.
const DefaultPort = 8000

// ServerPath is where the image holds the server.
const ServerPath = "/rfenv/shim.py"
