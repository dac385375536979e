package backend

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rfenv/rfenv/pkg/errs"
)

// TestInterrupted: after Ctrl-C every backend's failed up is an interruption, even when the
// cancellation surfaced as an infrastructure error (the Kubernetes backend used to keep exit 4 for
// those); a deadline keeps its error.
func TestInterrupted(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithTimeout(context.Background(), -1)
	defer cancel2()
	infra := errs.Wrap(errs.Infra, fmt.Errorf("watch pods: %w", errors.New("http2: stream closed")))
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want *errs.Kind
	}{
		{"cancelled, infrastructure error", cancelled, infra, errs.Interrupted},
		{"cancelled, context error", cancelled, context.Canceled, errs.Interrupted},
		{"cancelled, plain error", cancelled, errors.New("x"), errs.Interrupted},
		{"live ctx, cancellation from below", context.Background(), fmt.Errorf("dial: %w", context.Canceled), errs.Interrupted},
		{"live ctx, infrastructure error", context.Background(), infra, errs.Infra},
		{"deadline, infrastructure error", expired, infra, errs.Infra},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Interrupted(tc.ctx, tc.err, "up x interrupted")
			if k := errs.KindOf(got); k != tc.want {
				t.Errorf("kind %v, want %v (%v)", k, tc.want, got)
			}
			if tc.want == errs.Interrupted && got.Error() != "up x interrupted" {
				t.Errorf("message %q", got)
			}
		})
	}
	if Interrupted(cancelled, nil, "m") != nil {
		t.Error("nil error became an error")
	}
}
