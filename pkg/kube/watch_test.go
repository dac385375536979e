package kube

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rfenv/rfenv/pkg/host"
)

// TestWatchPodsRetriesWithoutRelisting (issue 11, defect 6): when a watch cannot be opened, the
// watch is retried (client-go's RetryWatcher, at most once a second) from the last resource version,
// instead of listing the pods again in a loop without backoff. The API server here lists fine and
// refuses every watch.
func TestWatchPodsRetriesWithoutRelisting(t *testing.T) {
	var lists, watches atomic.Int64
	third := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/namespaces/default/pods" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("watch") == "true" {
			if watches.Add(1) == 3 {
				close(third)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcd unavailable","reason":"InternalError","code":500}`)
			return
		}
		lists.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[]}`)
	}))
	defer srv.Close()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(kc, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]
current-context: x
`, srv.URL)), 0o600)
	t.Setenv("KUBECONFIG", kc)
	conn, err := Open(host.Spec{Kind: host.K8s, Raw: "k8s://x/default", Context: "x", Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn.WatchPods(ctx, "calc", "abc", "", nil, func([]corev1.Pod) {})
	}()
	select {
	case <-third:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d watch attempts in 60 s", watches.Load())
	}
	cancel()
	<-done
	if n := lists.Load(); n != 1 {
		t.Errorf("%d lists for %d failed watches, want the one initial list", n, watches.Load())
	}
}
