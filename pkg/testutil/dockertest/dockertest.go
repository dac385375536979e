// Package dockertest holds what end-to-end tests share: the local Python base image and a check that
// the Docker daemon is there. Tests fail, never skip, when Docker is missing: a green run must mean
// the real thing was exercised.
package dockertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// BaseImage is the image `make base-image` builds from Debian packages (python3, fastapi, uvicorn).
// RFENV_BASE_IMAGE overrides it.
func BaseImage() string {
	if v := os.Getenv("RFENV_BASE_IMAGE"); v != "" {
		return v
	}
	return "rfenv-python:bookworm"
}

// Require fails the test unless the Docker daemon answers and the base image exists.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		// Only `make test-unit` passes -short, asking for the tests that need no daemon; CI runs
		// everything, and there a missing daemon fails the run.
		t.Skip("end-to-end test: needs the Docker daemon (skipped by -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		t.Fatalf("the Docker daemon is required for this test and did not answer: %v: %s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "docker", "image", "inspect", BaseImage()).CombinedOutput(); err != nil {
		t.Fatalf("base image %s missing (run `make base-image`): %v: %s", BaseImage(), err, out)
	}
}
