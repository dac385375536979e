package kube_test

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestE2EK8sSessions: sessions pin pods as they pin containers. 30 sessions on 3 pods each run an
// episode; deleting one pod loses exactly the sessions on it (exit 6, never moved), the others go on,
// and a session opened afterwards works on the pods that run now.
func TestE2EK8sSessions(t *testing.T) {
	requireCluster(t)
	c := newClient(t)
	o := rfenv.UpOptions{Name: e2e.Name("k8s-sessions"), Replicas: 3, Hosts: []string{hostSpec}, ReadyTimeout: 3 * time.Minute}
	env, err := c.Up(context.Background(), image(t, "episodic"), rfenv.WithUpOptions(o))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Release()
	ctx := context.Background()
	type open struct {
		s       *rfenv.Session
		episode string
		pod     string
	}
	var sessions []open
	for i := 0; i < 30; i++ {
		s, err := env.OpenSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			EpisodeID string `json:"episode_id"`
			Replica   string `json:"replica"` // the pod's name (RFENV_REPLICA on Kubernetes)
		}
		if err := s.CallInto(ctx, "reset", nil, &r); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, open{s, r.EpisodeID, r.Replica})
	}
	victim := sessions[0].pod
	k := conn(t)
	if err := k.Core.Pods(namespace).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, 2*time.Minute, "the deleted pod to be gone", func() bool {
		_, err := k.Core.Pods(namespace).Get(ctx, victim, metav1.GetOptions{})
		return err != nil
	})
	lost, kept := 0, 0
	for _, o := range sessions {
		var st struct {
			Steps   int    `json:"steps"`
			Replica string `json:"replica"`
		}
		err := o.s.CallInto(ctx, "step", map[string]any{"episode_id": o.episode}, &st)
		switch {
		case o.pod == victim:
			lost++
			if !errors.Is(err, errs.SessionLost) {
				t.Errorf("session on the deleted pod: %v, want SessionLost", err)
			}
		case err != nil:
			t.Errorf("session on pod %s: %v", o.pod, err)
		default:
			kept++
			if st.Replica != o.pod || st.Steps != 1 {
				t.Errorf("session on pod %s answered %+v", o.pod, st)
			}
		}
	}
	if lost == 0 || kept == 0 {
		t.Fatalf("%d lost, %d kept", lost, kept)
	}
	s, err := env.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Call(ctx, "reset", nil); err != nil {
		t.Errorf("a new session after the delete: %v", err)
	}
}
