package rfenv_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestE2ESecretsSurviveRestart: a --secret reaches the method, and still does after Docker restarts
// the container (issue 11 defect 2: the shim deleted the secrets file after reading it), and the
// value is nowhere in docker inspect.
func TestE2ESecretsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	tag := e2e.Image(t, "actor")
	c, err := rfenv.New(rfenv.WithStateDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw := make([]byte, 16)
	rand.Read(raw)
	secret := "s3cret-" + hex.EncodeToString(raw)
	sum := sha256.Sum256([]byte(secret))
	want := hex.EncodeToString(sum[:])
	name := e2e.Name("secrets")
	withSecret := func(u *rfenv.UpOptions) { u.Secrets = map[string]string{"RESTART_SECRET": secret} }
	env, err := c.Up(ctx, tag, rfenv.WithName(name), withSecret)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Release()
	var first string
	if err := env.CallInto(ctx, "secret_digest", map[string]string{"name": "RESTART_SECRET"}, &first); err != nil || first != want {
		t.Fatalf("before the restart: secret_digest = %q, %v; want the secret's", first, err)
	}
	id := env.Record().Instances[0].ContainerID
	before := e2e.Inspect(t, docker, id).State.StartedAt

	if out, err := exec.Command("docker", "restart", id).CombinedOutput(); err != nil {
		t.Fatalf("docker restart: %v: %s", err, out)
	}
	if after := e2e.Inspect(t, docker, id).State.StartedAt; after == before {
		t.Fatalf("the container did not restart (started at %s both times)", after)
	}
	// ready again: the restarted shim answers /health ok inside the container
	e2e.Eventually(t, 120*time.Second, "the restarted shim's /health", func() bool {
		return exec.Command("docker", "exec", id, "python3", "-c",
			"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=5)").Run() == nil
	})
	// up again with the same options keeps the running container (same configuration), records
	// its address (Docker may give a restarted container a new one) and waits for its /health
	env2, err := c.Up(ctx, tag, rfenv.WithName(name), withSecret)
	if err != nil {
		t.Fatal(err)
	}
	defer env2.Release()
	if id2 := env2.Record().Instances[0].ContainerID; id2 != id {
		t.Fatalf("up replaced the restarted container %s by %s", id, id2)
	}
	var got string
	if err := env2.CallInto(ctx, "secret_digest", map[string]string{"name": "RESTART_SECRET"}, &got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("after docker restart: secret_digest = %q, want the secret's %q", got, want)
	}

	ins, err := json.Marshal(e2e.Inspect(t, docker, id))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ins), secret) {
		t.Errorf("the secret's value appears in docker inspect")
	}
}
