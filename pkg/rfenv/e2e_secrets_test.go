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
	env, err := c.Up(ctx, tag, rfenv.WithName(name), func(u *rfenv.UpOptions) {
		u.Secrets = map[string]string{"RESTART_SECRET": secret}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Release()
	digest := func(ctx context.Context) (string, error) {
		var got string
		err := env.CallInto(ctx, "secret_digest", map[string]string{"name": "RESTART_SECRET"}, &got)
		return got, err
	}
	if got, err := digest(ctx); err != nil || got != want {
		t.Fatalf("before the restart: secret_digest = %q, %v; want the secret's", got, err)
	}
	id := env.Record().Instances[0].ContainerID
	addr := env.Record().Instances[0].Address
	before := e2e.Inspect(t, docker, id).State.StartedAt

	if out, err := exec.Command("docker", "restart", id).CombinedOutput(); err != nil {
		t.Fatalf("docker restart: %v: %s", err, out)
	}
	if after := e2e.Inspect(t, docker, id).State.StartedAt; after == before {
		t.Fatalf("the container did not restart (started at %s both times)", after)
	}
	// Ready again once a call succeeds; a restarted shim without the secrets answers "" (the
	// digest of the empty string), which fails the test below rather than this wait.
	var got string
	e2e.Eventually(t, 120*time.Second, "a call on the restarted replica", func() bool {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var err error
		got, err = digest(cctx)
		if err != nil {
			// the pool calls the recorded address; following a container that comes back at a new
			// one is issue 11 defect 1, not this test's subject: say so rather than time out
			for _, ep := range e2e.Inspect(t, docker, id).NetworkSettings.Networks {
				if ep != nil && ep.IPAddress.IsValid() && ep.IPAddress.String() != addr {
					t.Fatalf("the restarted container is at %s, not at its recorded address %s", ep.IPAddress, addr)
				}
			}
		}
		return err == nil
	})
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
