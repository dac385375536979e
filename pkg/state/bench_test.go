package state

import (
	"context"
	"fmt"
	"testing"
)

// benchStore is a state with 5 environments of 3 replicas each: a realistic `rfenv call` read.
func benchStore(b *testing.B) *Store {
	s := openTemp(b)
	envs := make([]*Environment, 5)
	for i := range envs {
		envs[i] = sampleEnv(fmt.Sprintf("env%d", i))
	}
	put(b, s, envs...)
	return s
}

func BenchmarkLoad(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Load(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "env3"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdate includes the two fsyncs, so it measures the disk more than the code.
func BenchmarkUpdate(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		err := s.Update(ctx, func(f *File) error {
			f.Environments["env0"].Port = i
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNextCounter(b *testing.B) {
	s := openTemp(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.NextCounter(ctx, "env0"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNextCounterParallel has GOMAXPROCS goroutines contend for one counter file's flock.
func BenchmarkNextCounterParallel(b *testing.B) {
	s := openTemp(b)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.NextCounter(ctx, "env0"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
