// Package dockerd starts a second Docker daemon on this machine for tests: one with no images and no
// containers, so that what rfenv does to a remote host that lacks an image (transfer it, build there)
// really happens. Tests reach it over SSH through a test sshd (package sshd) with the daemon's socket
// path in the host spec: ssh://root@127.0.0.1:PORT/<Daemon.Socket>.
//
// What Start changes on the machine, and how the test's cleanup undoes it:
//   - a bridge rfbr<hex> with the address .1 of a /24 in 10.201.0.0/16 that no interface or route on the
//     machine uses; the daemon's containers get addresses on it, which this machine reaches directly
//     (the route to the /24 is the bridge's). Deleted at cleanup.
//   - a directory rfd-<pid>-<random> in the temporary directory holding the daemon's data root, exec
//     root, API socket, pid file, configuration and log. dockerd reads its own configuration file
//     there, never /etc/docker/daemon.json. Removed at cleanup, after unmounting anything left
//     mounted below it.
//   - the dockerd process, and the containerd it starts for itself (its state is in the exec root, so
//     it shares nothing with the machine's own daemon). At cleanup every container is removed, dockerd
//     is stopped (SIGTERM, which stops its containerd), and a containerd or shim left over (after a
//     crash) is killed by pid.
//
// The daemon runs with --iptables=false, --ip-masq=false and --ip-forward=false: it adds no firewall
// rule and changes no sysctl. Its containers cannot reach beyond this machine, which no test needs.
//
// Leftovers of a test binary that died before its cleanup (directories named after a pid that no
// longer runs, and their bridges) are removed the next time Start runs.
//
// Tests fail, never skip, when the daemon cannot start: a green run must mean the real thing ran.
// The package is Linux-only; on other systems it is empty.
package dockerd
