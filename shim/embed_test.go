package shim

import (
	"bytes"
	"testing"
)

func TestVersionMatchesServer(t *testing.T) {
	want := []byte("\nSHIM_VERSION = \"" + Version + "\"\n")
	if !bytes.Contains(Server, want) {
		t.Fatalf("server.py does not define SHIM_VERSION = %q: keep shim.Version and server.py in sync", Version)
	}
}

func TestServerEmbedded(t *testing.T) {
	if !bytes.HasPrefix(Server, []byte("#!/usr/bin/env python3\n")) {
		t.Fatal("embedded server.py looks wrong")
	}
}
