package rfenv_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/state"
	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// TestE2ELibrary: the library's Up, Get from a second client, Call from many goroutines at once,
// deadlines, List and CloseAll, against real containers.
func TestE2ELibrary(t *testing.T) {
	ctx := context.Background()
	docker := e2e.Docker(t)
	dir := e2e.StateDir(t)
	tag := e2e.Image(t, "actor")
	c, err := rfenv.New(rfenv.WithStateDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env, err := c.Up(ctx, tag, rfenv.WithName(e2e.Name("lib")), rfenv.WithReplicas(3), rfenv.WithBalancer("round_robin"))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Release()

	// A second client (as another process would) finds it through the state file.
	c2, _ := rfenv.New(rfenv.WithStateDir(dir))
	defer c2.Close()
	env2, err := c2.Get(ctx, e2e.Name("lib"))
	if err != nil {
		t.Fatal(err)
	}
	defer env2.Release()

	const goroutines, each = 64, 20
	var wg sync.WaitGroup
	errc := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				var sum int
				if err := env2.CallInto(ctx, "add", map[string]int{"a": g, "b": i}, &sum); err != nil {
					errc <- err
					return
				}
				if sum != g+i {
					errc <- fmt.Errorf("add(%d,%d) = %d", g, i, sum)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	st := env.Stats(ctx)
	if st.TotalRequests != goroutines*each || st.HealthyInstances != 3 {
		t.Errorf("stats %+v, want %d requests on 3 healthy replicas", st, goroutines*each)
	}
	for _, in := range st.Instances {
		// round_robin: an even share each.
		if in.Requests < goroutines*each/3-1 || in.Requests > goroutines*each/3+1 {
			t.Errorf("replica %d served %d of %d calls under round_robin", in.Index, in.Requests, goroutines*each)
		}
	}

	// The context's deadline ends the call, in the server too.
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	start := time.Now()
	_, err = env.Call(dctx, "sleep", map[string]any{"seconds": 10})
	cancel()
	if !errors.Is(err, errs.Deadline) || time.Since(start) > 2*time.Second {
		t.Errorf("sleep past deadline: err %v after %s", err, time.Since(start))
	}
	// A method that raises is a MethodRaised error with the Python type.
	_, err = env.Call(ctx, "fail", map[string]string{"message": "nope"})
	if !errors.Is(err, errs.MethodRaised) || err.Error() != "ValueError: nope" {
		t.Errorf("fail: %v", err)
	}
	// Positional arguments.
	res, err := env.CallArgs(ctx, "add", []any{40, 2}, nil)
	if err != nil || string(res) != "42" {
		t.Errorf("CallArgs = %s, %v", res, err)
	}

	list, err := c.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != e2e.Name("lib") {
		t.Errorf("List = %v, %v", list, err)
	}
	if _, err := c.Get(ctx, "missing"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Get(missing) = %v", err)
	}
	if err := c.CloseAll(ctx); err != nil {
		t.Fatal(err)
	}
	if left := e2e.List(t, docker, state.StateID(dir)); len(left) != 0 {
		t.Errorf("%d containers left after CloseAll", len(left))
	}
}
