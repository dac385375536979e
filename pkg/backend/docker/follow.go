package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/containers"
	"github.com/rfenv/rfenv/pkg/dockerhost"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
	"github.com/rfenv/rfenv/pkg/state"
)

// followTimeout bounds finding a replica's new address: one inspection and one request.
const followTimeout = 5 * time.Second

// errMoved says that the replica's entry changed while it was being followed (an up replaced it).
var errMoved = errors.New("the replica's entry changed meanwhile")

// Follow implements backend.Follower. A container that Docker restarted (docker stop/start, a daemon
// restart, a reboot with the restart policy) can come back at a new bridge address, and another
// container can take its old one. Follow re-inspects the replica's container by ID on its own host
// (through SSH for remote ones); if it runs at another address and answers there with the
// environment's token, the new address is recorded in the state file (under its lock).
func (c *Backend) Follow(ctx context.Context, rec *state.Environment, replica int) (state.Instance, bool, error) {
	var in state.Instance
	found := false
	for _, x := range rec.Instances {
		if x.Index == replica {
			in, found = x, true
		}
	}
	if !found || in.ContainerID == "" {
		return in, false, nil
	}
	sp, err := host.Parse(in.Host)
	if err != nil {
		return in, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, followTimeout)
	defer cancel()
	conn, err := c.conn(ctx, sp)
	if err != nil {
		return in, false, err
	}
	res, err := conn.Docker.ContainerInspect(ctx, in.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		return in, false, err
	}
	if res.Container.State == nil || !res.Container.State.Running {
		return in, false, nil
	}
	// Where it runs now: its bridge address, or where its port is published on the host's loopback
	// (Docker may bind another host port after a restart).
	port := in.Port
	if port == 0 {
		port = rec.Port
	}
	// A replica reached at a loopback address is reached at its published port (the published
	// transport, or auto's fallback for this replica).
	viaPublished := rec.Transport == protocol.TransportPublished || isLoopback(in.Address)
	addr, nport := containers.Address(res.Container, ""), port
	if viaPublished {
		pub := containers.PublishedAddr(res.Container, rec.Port)
		addr, nport = pub.Addr(), int(pub.Port())
	}
	if !addr.IsValid() || addr.String() == in.Address && nport == port {
		return in, false, nil
	}
	target := net.JoinHostPort(addr.String(), strconv.Itoa(nport))
	if err := checkToken(ctx, conn, target, rec); err != nil {
		return in, false, fmt.Errorf("replica %d's container %s runs at %s now, but %w", replica, in.ContainerName, target, err)
	}
	moved := in
	moved.Address = addr.String()
	if viaPublished {
		moved.Port = nport
	}
	err = c.store.Update(ctx, func(f *state.File) error {
		e := f.Environments[rec.Name]
		if e == nil {
			return errMoved
		}
		for i := range e.Instances {
			if e.Instances[i].Index == replica && e.Instances[i].ContainerID == in.ContainerID {
				e.Instances[i].Address, e.Instances[i].Port = moved.Address, moved.Port
				return nil
			}
		}
		return errMoved
	})
	if err != nil {
		return in, false, err
	}
	c.log.Info("replica moved", "env", rec.Name, "replica", replica, "from", in.Address, "to", moved.Address)
	return moved, true, nil
}

// checkToken makes sure the server at addr is the environment's: it answers an authenticated
// request (a shim's /stats) with 200. A user's http server has no such endpoint; its container,
// inspected by ID, is trusted to be the one at its own address once it answers at all.
func checkToken(ctx context.Context, conn *dockerhost.Conn, addr string, rec *state.Environment) error {
	path := "/stats"
	if rec.Type == pool.KindHTTP {
		path = "/"
	}
	status, err := getThrough(ctx, conn, addr, path, rec.Token)
	if err != nil {
		return fmt.Errorf("does not answer there: %w", err)
	}
	if status != http.StatusOK && rec.Type != pool.KindHTTP {
		return fmt.Errorf("it answers %s there with %d, not as the environment's server", path, status)
	}
	return nil
}

// getThrough sends GET path to addr through conn's dialer (SSH for remote hosts), with the token
// when there is one, and returns the answer's status.
func getThrough(ctx context.Context, conn *dockerhost.Conn, addr, path, token string) (int, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return conn.DialContext(ctx, "tcp", addr)
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// isLoopback says whether a recorded address is a loopback one.
func isLoopback(addr string) bool {
	ip, err := netip.ParseAddr(addr)
	return err == nil && ip.IsLoopback()
}
