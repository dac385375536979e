// Package shim embeds the HTTP server that rfenv adds to function-based environment images.
package shim

import _ "embed"

// Server is server.py, copied into images at ServerPath.
//
//go:embed server.py
var Server []byte

// Version is the wire protocol version the server speaks; server.py's PROTOCOL_VERSION matches it.
const Version = "1"

// DefaultPort is the port the server listens on inside the container.
const DefaultPort = 8000

// ServerPath is where images hold the server.
const ServerPath = "/rfenv/shim.py"
