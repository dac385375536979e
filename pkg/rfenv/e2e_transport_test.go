package rfenv_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestE2ETransportPublished (issue 12 part 2, the published transport): each replica's port is
// published on 127.0.0.1 only, at a port Docker picks; calls reach it there with the token; state
// and stats show that address; a second up with the same options keeps the replicas.
func TestE2ETransportPublished(t *testing.T) {
	ctx := context.Background()
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	tag := e2e.Image(t, "actor")
	name := uniqueName("pub")
	c, err := rfenv.New(rfenv.WithStateDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := rfenv.UpOptions{Name: name, Replicas: 2, Transport: "published"}
	env, err := c.Up(ctx, tag, rfenv.WithUpOptions(o))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Release()
	rec := env.Record()
	if rec.Transport != "published" {
		t.Errorf("state records transport %q", rec.Transport)
	}
	for _, in := range rec.Instances {
		if in.Address != "127.0.0.1" || in.Port == 0 || in.Port == rec.Port {
			t.Errorf("instance %+v: want 127.0.0.1 and a port Docker picked", in)
		}
		r := e2e.Inspect(t, docker, in.ContainerID)
		for p, bs := range r.NetworkSettings.Ports {
			for _, b := range bs {
				if !b.HostIP.IsLoopback() || b.HostIP.String() != "127.0.0.1" {
					t.Errorf("%s: port %s published on %s, want 127.0.0.1 only", in.ContainerName, p, b.HostIP)
				}
				if b.HostPort != strconv.Itoa(in.Port) {
					t.Errorf("%s: published at %s, state says %d", in.ContainerName, b.HostPort, in.Port)
				}
			}
		}
	}
	res, err := env.Call(ctx, "add", map[string]any{"a": 40, "b": 2})
	var sum int
	if err != nil || json.Unmarshal(res, &sum) != nil || sum != 42 {
		t.Fatalf("add through the published port = %s, %v", res, err)
	}
	st := env.Stats(ctx)
	for i, s := range st.Instances {
		if !s.Healthy || s.Address != "127.0.0.1" || s.Port != rec.Instances[i].Port {
			t.Errorf("stats %+v: want healthy at 127.0.0.1:%d", s, rec.Instances[i].Port)
		}
	}
	// The token is still required at the published port.
	resp, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(rec.Instances[0].Port)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Write([]byte("POST /call HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"method\":\"add\"}\n"))
	buf := make([]byte, 64)
	n, _ := resp.Read(buf)
	resp.Close()
	if got := string(buf[:n]); len(got) < 12 || got[9:12] != "401" {
		t.Errorf("a call without the token at the published port answered %q, want 401", got)
	}

	// The same up keeps them; another transport is another configuration.
	again, err := c.Up(ctx, tag, rfenv.WithUpOptions(o))
	if err != nil {
		t.Fatal(err)
	}
	again.Release()
	for i, in := range again.Record().Instances {
		if in.ContainerID != rec.Instances[i].ContainerID || in.Port != rec.Instances[i].Port {
			t.Errorf("the same up replaced replica %d: %+v → %+v", i, rec.Instances[i], in)
		}
	}
	o.Transport = "direct"
	if _, err := c.Up(ctx, tag, rfenv.WithUpOptions(o)); !errors.Is(err, errs.Conflict) {
		t.Errorf("up with another transport: %v, want a conflict", err)
	}
	o.Transport = "carrier-pigeon"
	if _, err := c.Up(ctx, tag, rfenv.WithUpOptions(o)); !errors.Is(err, errs.Usage) {
		t.Errorf("up with an unknown transport: %v, want a usage error", err)
	}
}
