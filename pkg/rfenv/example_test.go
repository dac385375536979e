package rfenv_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rfenv/rfenv/pkg/build"
	"github.com/rfenv/rfenv/pkg/rfenv"
	"github.com/rfenv/rfenv/pkg/testutil/dockertest"
)

// Build an environment directory, start two replicas, call a method, and remove them.
func Example() {
	ctx := context.Background()
	stateDir, _ := os.MkdirTemp("", "rfenv-example-")
	defer os.RemoveAll(stateDir)

	c, err := rfenv.New(rfenv.WithStateDir(stateDir))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	_, err = c.Build(ctx, nil, build.Options{
		Dir:       filepath.Join("..", "..", "examples", "calculator"),
		Tag:       "rfenv-example-calculator:latest",
		BaseImage: dockertest.BaseImage(), // no registry here: FROM the local Python image
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	env, err := c.Up(ctx, "rfenv-example-calculator:latest", rfenv.WithName(fmt.Sprintf("calc-%d", os.Getpid())) /* unique on a shared daemon */, rfenv.WithReplicas(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer env.Close(ctx)

	var sum float64
	if err := env.CallInto(ctx, "add", map[string]any{"a": 2, "b": 3}, &sum); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sum)
	// Output: 5
}

// Methods lists what an environment offers.
func ExampleEnv_Methods() {
	ctx := context.Background()
	stateDir, _ := os.MkdirTemp("", "rfenv-example-")
	defer os.RemoveAll(stateDir)
	c, _ := rfenv.New(rfenv.WithStateDir(stateDir))
	defer c.Close()
	_, err := c.Build(ctx, nil, build.Options{
		Dir: filepath.Join("..", "..", "examples", "calculator"), Tag: "rfenv-example-calculator:latest",
		BaseImage: dockertest.BaseImage(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	env, err := c.Up(ctx, "rfenv-example-calculator:latest", rfenv.WithName(fmt.Sprintf("calc-methods-%d", os.Getpid())))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer env.Close(ctx)
	ms, err := env.Methods(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range ms {
		fmt.Println(m.Name, m.Signature)
	}
	// Output:
	// add (a: float, b: float = 0) -> float
	// evaluate (task_type: str = 'sat', num_samples: int = 3) -> dict
	// greet (name: str) -> str
}
