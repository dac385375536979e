package front

import (
	"context"

	"github.com/rfenv/rfenv/cmd/iostreams"
	"github.com/rfenv/rfenv/cmd/output/plain"
	"github.com/rfenv/rfenv/cmd/report"
	"github.com/rfenv/rfenv/pkg/running"
	"github.com/rfenv/rfenv/pkg/state"
)

// runCall runs a call line as `rfenv-full call` does, through the same running.Env: the same pool
// options, deadline, sessions, following of moved replicas, diagnosis, output and exit code.
// handOff says the front has done nothing the user could notice (it read no input and called no
// replica), and the full binary must run the line: an environment it cannot call itself, or none
// of that name (the full binary's error suggests names).
func runCall(ctx context.Context, ios *iostreams.IOStreams, getenv func(string) string, l callLine) (code int, handOff bool) {
	timeout, err := l.Call.Check()
	if err != nil {
		return 0, true
	}
	store, err := state.Open(l.StateDir)
	if err != nil {
		return 0, true
	}
	rec, err := store.Get(ctx, l.Call.Name)
	if err != nil || !callable(rec) {
		return 0, true
	}
	fail := func(err error) (int, bool) {
		err = report.PoolAdvice(report.Interrupted(ctx, err))
		report.Print(ios, l.Quiet, l.Verbose, err, err.Error())
		return report.Code(err), false
	}
	args, err := l.Call.Args(ios.In)
	if err != nil {
		return fail(err)
	}
	deps := running.Deps{Store: store, Log: l.Logger(ios.ErrOut)}
	if rec.Backend == state.BackendDocker {
		deps.Backend = fullServices{ios: ios, getenv: getenv, line: l}
	}
	env, err := running.New(rec, endpointsOf(rec, rec.Instances), nil, deps, l.Call.EnvOptions()...)
	if err != nil {
		return fail(err)
	}
	defer env.Release()
	res, err := l.Call.Invoke(ctx, env, args, timeout)
	if err != nil {
		return fail(err)
	}
	if err := plain.JSON(ios, res); err != nil {
		return fail(err)
	}
	return report.ExitOK, false
}
