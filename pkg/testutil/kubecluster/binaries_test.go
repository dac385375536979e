package kubecluster

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestBuildBinaries builds (or finds in the cache) everything a cluster needs. `make k8s-binaries`
// runs it on its own so that the slow first compile is a separate, visible step.
func TestBuildBinaries(t *testing.T) {
	if os.Getenv("RFENV_TEST_K8S") != "1" {
		t.Skip("set RFENV_TEST_K8S=1 (make k8s-binaries)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	b, err := EnsureBinaries(ctx, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("binaries: %+v", b)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
