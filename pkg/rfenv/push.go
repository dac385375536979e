package rfenv

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
)

// Push pushes an image from a host's daemon (default localhost) to its registry, so that a cluster
// can pull it (`rfenv build --push`). Credentials come from the Docker CLI's config file
// ($DOCKER_CONFIG/config.json or ~/.docker/config.json) when it has an "auth" entry for the
// registry; credential helpers are not consulted. Progress lines go to progress (nil discards).
func (c *Client) Push(ctx context.Context, hostSpec, image string, progress io.Writer) error {
	sp, err := host.Parse(hostSpec)
	if err != nil {
		return err
	}
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return errs.New(errs.Usage, "--push %s: %v", image, err)
	}
	if reference.Domain(ref) == "docker.io" && !strings.HasPrefix(image, "docker.io/") {
		return errs.New(errs.Usage, "--push: %s names no registry; tag it REGISTRY/NAME:TAG (e.g. 127.0.0.1:5000/%s)", image, image)
	}
	conn, err := c.conn(ctx, sp)
	if err != nil {
		return err
	}
	resp, err := conn.Docker.ImagePush(ctx, image, client.ImagePushOptions{RegistryAuth: registryAuth(reference.Domain(ref))})
	if err != nil {
		return errs.Wrap(errs.Infra, fmt.Errorf("push %s from %s: %w", image, sp, err))
	}
	defer resp.Close()
	last := ""
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return errs.Wrap(errs.Infra, fmt.Errorf("push %s: %w", image, err))
		}
		if msg.Error != nil {
			return errs.Wrap(errs.Infra, fmt.Errorf("push %s: %s", image, msg.Error.Message))
		}
		if progress != nil && msg.Status != "" && msg.Progress == nil {
			line := strings.TrimSpace(msg.ID + " " + msg.Status)
			if line != last {
				fmt.Fprintln(progress, line)
				last = line
			}
		}
	}
	return nil
}

// registryAuth is the X-Registry-Auth value for a registry: its "auth" entry from the Docker CLI's
// config file, or an empty credential (which registries without authentication accept).
func registryAuth(domain string) string {
	empty := base64.URLEncoding.EncodeToString([]byte("{}"))
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return empty
		}
		dir = filepath.Join(home, ".docker")
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return empty
	}
	var cfg struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if json.Unmarshal(data, &cfg) != nil {
		return empty
	}
	for k, a := range cfg.Auths {
		k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
		k = strings.TrimSuffix(strings.TrimSuffix(k, "/v1/"), "/")
		if k != domain || a.Auth == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return empty
		}
		user, pass, _ := strings.Cut(string(raw), ":")
		b, _ := json.Marshal(map[string]string{"username": user, "password": pass, "serveraddress": domain})
		return base64.URLEncoding.EncodeToString(b)
	}
	return empty
}
