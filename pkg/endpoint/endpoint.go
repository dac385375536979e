// Package endpoint says how a recorded environment is reached: the pool's endpoint for each replica
// and the pool's options, from the state entry alone. The library and the lean front binary
// (cmd/front), which links no Docker client, share it, so both call the same addresses the same way.
package endpoint

import (
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// Of is where replica in of rec answers: an attached server's URL, else its container's recorded
// address and port. A replica on an ssh:// host (see OverSSH) is at that address on the remote
// host, so its endpoint needs the host's SSH connection as its Dialer.
func Of(rec *state.Environment, in state.Instance) pool.Endpoint {
	if in.URL != "" {
		return pool.Endpoint{Index: in.Index, Host: in.Host, Address: strings.TrimPrefix(in.URL, "http://")}
	}
	port := in.Port
	if port == 0 {
		port = rec.Port
	}
	return pool.Endpoint{Index: in.Index, Host: in.Host, Address: net.JoinHostPort(in.Address, strconv.Itoa(port))}
}

// OverSSH returns the ssh:// host replica in runs on, and whether it runs on one.
func OverSSH(in state.Instance) (host.Spec, bool) {
	if in.URL != "" {
		return host.Spec{}, false
	}
	sp, err := host.Parse(in.Host)
	return sp, err == nil && sp.Kind == host.SSH
}

// PoolOptions are the pool's options for rec as up recorded it: its token, kind, balancing and
// in-flight budget. Callers add their own (retries, a shared round-robin counter).
func PoolOptions(rec *state.Environment, log *slog.Logger) pool.Options {
	return pool.Options{Name: rec.Name, Token: rec.Token, Kind: rec.Type, Strategy: rec.Balancer, MaxInflight: rec.MaxInflight, Logger: log}
}
