package cmd

import (
	"context"
	"testing"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/cmd/iostreams"
)

// TestServeFlags parses `rfenv serve` flags through the runF hook: nothing listens, no Docker.
func TestServeFlags(t *testing.T) {
	cases := []struct {
		args    []string
		want    ServeOptions
		wantErr bool
	}{
		{args: nil, want: ServeOptions{}},
		{args: []string{"--socket", "/run/x.sock", "--watch-stdin", "--json"}, want: ServeOptions{Socket: "/run/x.sock", WatchStdin: true, JSON: true}},
		{args: []string{"--listen", "127.0.0.1:8765", "--token-file", "/t"}, want: ServeOptions{Listen: "127.0.0.1:8765", TokenFile: "/t"}},
		{args: []string{"--listen", "0.0.0.0:1", "--tls-cert", "c", "--tls-key", "k"}, want: ServeOptions{Listen: "0.0.0.0:1", TLSCert: "c", TLSKey: "k"}},
		{args: []string{"--socket", "/s", "--listen", "127.0.0.1:1"}, wantErr: true},
		{args: []string{"--listen", "127.0.0.1:1", "--tls-cert", "c"}, wantErr: true},
		{args: []string{"--tls-cert", "c", "--tls-key", "k"}, wantErr: true},
		{args: []string{"extra"}, wantErr: true},
	}
	for _, c := range cases {
		ios, _, _, _ := iostreams.Test()
		f := NewFactory(ios, func(string) string { return "" })
		cfg, err := config.Load(f.Getenv)
		if err != nil {
			t.Fatal(err)
		}
		f.Config = cfg
		var got *ServeOptions
		cmd := newServeCmd(f, func(_ context.Context, o *ServeOptions) error { got = o; return nil })
		cmd.SetArgs(c.args)
		cmd.SetOut(ios.Out)
		cmd.SetErr(ios.ErrOut)
		err = cmd.ExecuteContext(context.Background())
		if c.wantErr {
			if err == nil || ExitCode(err) != ExitUsage {
				t.Errorf("%v: err %v, want a usage error", c.args, err)
			}
			continue
		}
		if err != nil || got == nil || *got != c.want {
			t.Errorf("%v: got %+v, %v; want %+v", c.args, got, err, c.want)
		}
	}
}
