package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
)

// How calls reach replicas (UpOptions.Transport). A container's bridge address is routable from the
// client on a Linux host's own daemon and, through SSH, on a remote one; it is not on Docker Desktop,
// rootless Docker, Podman machines and most tcp:// daemons. There the daemon host's 127.0.0.1 is the
// way in: published, at a port Docker picks, never on another address.
//
// auto publishes wherever that loopback can be reached (a daemon on this machine, or through SSH),
// so that it can fall back without recreating anything, and decides per replica: readiness is asked
// at the bridge address and, when that cannot be dialled, at the published port; once ready, each
// replica is recorded at its bridge address if it answers there, else at its published port. (An
// SSH server whose loopback is not the daemon's, such as sshd in another network namespace with the
// daemon's socket, reaches bridge addresses but not published ports: the choice is per replica.)

// bridgeProbeTimeout bounds auto's question to a bridge address: a routable one answers in
// milliseconds, an unroutable one may never.
const bridgeProbeTimeout = 3 * time.Second

// publishes says whether replicas on conn get their port published on the daemon host's loopback.
func publishes(transport string, conn *dockerhost.Conn) bool {
	switch transport {
	case protocol.TransportPublished:
		return true
	case protocol.TransportDirect:
		return false
	}
	return loopbackReachable(conn)
}

// loopbackReachable says whether the daemon host's 127.0.0.1 can be reached from here: it is this
// machine's, or it is reached through the host's SSH connection.
func loopbackReachable(conn *dockerhost.Conn) bool {
	if conn.Spec.Kind != host.Local || conn.Docker == nil {
		return true
	}
	return daemonOnThisMachine(conn.Docker.DaemonHost())
}

// daemonOnThisMachine says whether a daemon address (DOCKER_HOST) is this machine's: a socket or
// named pipe, or tcp:// on a loopback address.
func daemonOnThisMachine(daemonHost string) bool {
	u, err := url.Parse(daemonHost)
	if err != nil {
		return true
	}
	switch u.Scheme {
	case "tcp", "http", "https":
		h := u.Hostname()
		if h == "localhost" {
			return true
		}
		ip, err := netip.ParseAddr(h)
		return err == nil && ip.IsLoopback()
	}
	return true
}

// checkTransport refuses, before anything starts, a published transport that could not be reached.
func checkTransport(o backend.UpOptions, conns map[string]*dockerhost.Conn) error {
	if o.Transport != protocol.TransportPublished {
		return nil
	}
	for _, conn := range conns {
		if !loopbackReachable(conn) {
			return errs.New(errs.Usage, "transport %s: the daemon at %s would publish ports on its own host's 127.0.0.1, which this machine cannot reach; use an ssh:// host (ssh://USER@HOST) so that rfenv reaches them through SSH",
				protocol.TransportPublished, conn.Docker.DaemonHost())
		}
	}
	return nil
}

// unroutableHint explains a probe that found no route to a replica on a daemon that is not on this
// machine, where auto has nothing to fall back to; "" for other errors.
func unroutableHint(conn *dockerhost.Conn, err error) string {
	if loopbackReachable(conn) || !isUnroutable(err) {
		return ""
	}
	return "its bridge address is not routable from this machine (" + err.Error() + "), and the daemon at " + conn.Docker.DaemonHost() +
		" is not on this machine, so a published port would be on that host's loopback; use an ssh:// host (ssh://USER@HOST) so that rfenv reaches the replicas through SSH"
}

// isUnroutable says whether a dial error means there is no route (as opposed to nothing listening yet).
func isUnroutable(err error) bool {
	return errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH)
}

// publishedOf is where a container's port is published on its host's loopback.
func publishedOf(ctx context.Context, conn *dockerhost.Conn, id string, port int) (netip.AddrPort, error) {
	r, err := conn.Docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return netip.AddrPort{}, err
	}
	pub := containers.PublishedAddr(r.Container, port)
	if !pub.IsValid() {
		return pub, fmt.Errorf("%s has no port published on 127.0.0.1", r.Container.Name)
	}
	return pub, nil
}

// fallbackProbe is auto's readiness question for one replica: at its bridge address, and when that
// cannot be dialled, at its published port (found on first need).
type fallbackProbe struct {
	c         *Backend
	rec       *state.Environment
	conn      *dockerhost.Conn
	in        state.Instance
	viaPub    *pool.Pool
	pubFound  bool
	preferPub bool
}

// health asks the replica through primary (its pool at the bridge address), falling back. Once the
// published port has answered it is asked first: an unroutable bridge address may take a dial
// timeout to say so.
func (f *fallbackProbe) health(ctx context.Context, primary *pool.Pool) (pool.Health, error) {
	if f.preferPub {
		if h, err := f.viaPub.HealthOf(ctx, f.in.Index); err == nil {
			return h, nil
		}
	}
	h, err := primary.HealthOf(ctx, f.in.Index)
	if err == nil || !publishes(protocol.TransportAuto, f.conn) {
		return h, err
	}
	if f.viaPub == nil && !f.pubFound {
		f.pubFound = true
		pub, perr := publishedOf(ctx, f.conn, f.in.ContainerID, f.rec.Port)
		if perr != nil {
			return h, err
		}
		via := f.in
		via.Address, via.Port = pub.Addr().String(), int(pub.Port())
		if f.viaPub, perr = f.c.newPool(f.rec, []state.Instance{via}); perr != nil {
			return h, err
		}
	}
	if f.viaPub == nil {
		return h, err
	}
	ph, perr := f.viaPub.HealthOf(ctx, f.in.Index)
	if perr != nil {
		return h, err
	}
	f.preferPub = true
	return ph, nil
}

func (f *fallbackProbe) close() {
	if f.viaPub != nil {
		f.viaPub.Close()
	}
}

// settleAuto records each ready replica of an auto up at its bridge address when it answers there,
// else at its published port, and returns the environment's transport: direct, published, or mixed
// when replicas differ. Replicas on hosts where nothing is published stay where they are.
func (c *Backend) settleAuto(ctx context.Context, rec *state.Environment, instances []state.Instance, conns map[string]*dockerhost.Conn) string {
	viaPub := make([]bool, len(instances))
	var wg sync.WaitGroup
	for i, in := range instances {
		conn := conns[in.Host]
		if conn == nil || !publishes(protocol.TransportAuto, conn) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := net.JoinHostPort(in.Address, strconv.Itoa(rec.Port))
			err := askHealth(ctx, conn, target, rec.Token)
			if err == nil {
				instances[i].Port = rec.Port
				return
			}
			pub, perr := publishedOf(ctx, conn, in.ContainerID, rec.Port)
			if perr != nil {
				c.log.Warn("transport auto: keeping the bridge address", "replica", in.ContainerName, "bridge", err, "published", perr)
				return
			}
			c.log.Info("transport auto: the bridge address does not answer; using the published port", "replica", in.ContainerName, "bridge", target, "err", err, "published", pub)
			instances[i].Address, instances[i].Port = pub.Addr().String(), int(pub.Port())
			viaPub[i] = true
		}()
	}
	wg.Wait()
	direct, published := 0, 0
	for _, p := range viaPub {
		if p {
			published++
		} else {
			direct++
		}
	}
	switch {
	case published == 0:
		return protocol.TransportDirect
	case direct == 0:
		return protocol.TransportPublished
	}
	return protocol.TransportMixed
}

// askHealth asks /health at addr through conn, with the token. Any HTTP answer proves the address
// routable (a user's http server may have no /health).
func askHealth(ctx context.Context, conn *dockerhost.Conn, addr, token string) error {
	ctx, cancel := context.WithTimeout(ctx, bridgeProbeTimeout)
	defer cancel()
	_, err := getThrough(ctx, conn, addr, "/health", token)
	return err
}
