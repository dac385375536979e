// Package sshd starts real OpenSSH servers (Debian's /usr/sbin/sshd) for tests: on 127.0.0.1 with
// Start, or inside a network namespace of their own with StartInNetns (so a test can cut the link).
//
// Every server has its own directory with an sshd_config, an ed25519 host key made in Go, an
// authorized_keys file holding a client key made for the test, and a pid file. Nothing of the
// machine's own ssh setup is read or changed; the only machine-wide things touched are:
//   - /run/sshd (sshd's privilege separation directory) is created if missing and left in place;
//   - StartInNetns: see netns.go for the namespace, veth pair, iptables rules and ip_forward.
//
// Tests fail, never skip, when sshd is missing: a green run must mean the real thing was exercised.
//
// The package is Linux-only (it signals and waits for sshd's processes through /proc and pidfds,
// and makes network namespaces); on other systems it is empty.
package sshd
