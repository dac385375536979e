//go:build linux

package dockerd

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
)

// TestStartReachStop: the second daemon starts empty, takes an image from the machine's daemon,
// runs a container this machine reaches at its bridge address, and leaves nothing behind.
func TestStartReachStop(t *testing.T) {
	dockertest.Require(t)
	var dir, bridge string
	t.Run("daemon", func(t *testing.T) {
		d := Start(t)
		dir, bridge = d.Dir, d.Bridge
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()

		imgs, err := d.Docker.ImageList(ctx, client.ImageListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs.Items) != 0 || len(d.Containers(t)) != 0 {
			t.Fatalf("a new daemon has %d images and %d containers, want none", len(imgs.Items), len(d.Containers(t)))
		}
		base := dockertest.BaseImage()
		if d.HasImage(t, base) {
			t.Fatalf("%s is on the new daemon before loading it", base)
		}
		d.LoadImage(t, base)

		created, err := d.Docker.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{Image: base, Cmd: []string{"python3", "-m", "http.server", "8000"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Docker.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		ins, err := d.Docker.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ip := ins.Container.NetworkSettings.Networks["bridge"].IPAddress
		if !d.Subnet.Contains(ip) {
			t.Fatalf("container address %v is not on the daemon's bridge %v", ip, d.Subnet)
		}
		hc := &http.Client{Timeout: 2 * time.Second}
		url := "http://" + net.JoinHostPort(ip.String(), "8000") + "/"
		deadline := time.Now().Add(30 * time.Second)
		for wait := 10 * time.Millisecond; ; wait = min(2*wait, 300*time.Millisecond) {
			resp, err := hc.Get(url)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), "Directory listing") {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("container at %s not reachable from this machine: %v", url, err)
			}
			time.Sleep(wait) // the server in the container starts in the background: nothing to wait on
		}
		// The machine's own daemon knows nothing of it.
		local, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		defer local.Close()
		if _, err := local.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{}); err == nil {
			t.Fatalf("the machine's daemon sees container %s of the second daemon", created.ID)
		}
	})
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("directory %s left behind", dir)
	}
	if _, err := net.InterfaceByName(bridge); err == nil {
		t.Errorf("bridge %s left behind", bridge)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), dir) {
		t.Errorf("mounts below %s left behind", dir)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if raw, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(raw), dir) {
			t.Errorf("process %s left behind: %q", e.Name(), strings.ReplaceAll(string(raw), "\x00", " "))
		}
	}
}
