//go:build !linux

package sshx

import "net"

// withQuickAck is a no-op where TCP_QUICKACK does not exist (see quickack_linux.go); the pty
// session opened by keepInteractive makes sshd disable Nagle instead.
func withQuickAck(c net.Conn) net.Conn { return c }

const quickAckSupported = false
