package kube

import (
	"testing"

	"github.com/rfenv/rfenv/pkg/backend"
)

// TestKubeHash (issue 11, defect 5): the Deployment's configuration hash does not depend on whether
// this machine's Docker daemon has the image (an ID when it has, the reference when not), and it
// changes with the pull policy.
func TestKubeHash(t *testing.T) {
	o := backend.UpOptions{Name: "calc", Replicas: 2, PullPolicy: "IfNotPresent", Env: map[string]string{"A": "1"}}
	local := backend.ImageInfo{ID: "sha256:0123abcd", Kind: "function", Port: 8000, IDs: map[string]string{"localhost": "sha256:0123abcd"}}
	elsewhere := backend.ImageInfo{ID: "calc:1", Kind: "function", Port: 8000}
	h := kubeHash("tok", "calc:1", local, "function", o)
	if other := kubeHash("tok", "calc:1", elsewhere, "function", o); other != h {
		t.Errorf("hash with the image on the local daemon %s, without %s: want equal", h, other)
	}
	always := o
	always.PullPolicy = "Always"
	if kubeHash("tok", "calc:1", local, "function", always) == h {
		t.Error("changing the pull policy left the hash unchanged")
	}
	if kubeHash("tok", "calc:2", local, "function", o) == h {
		t.Error("another image reference left the hash unchanged")
	}
}
