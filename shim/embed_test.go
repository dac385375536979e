package shim

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	if Version == "" || strings.Trim(Version, "0123456789") != "" {
		t.Fatalf("Version = %q, want a number", Version)
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		src, want string
		ok        bool
	}{
		{"\"\"\"doc\"\"\"\nSHIM_VERSION = \"7\"\nX = 1\n", "7", true},
		{"SHIM_VERSION = \"12\"\r\n", "12", true},
		{"SHIM_VERSION = \"\"\n", "", false},
		{"SHIM_VERSION = \"1a\"\n", "", false},
		{"# SHIM_VERSION = \"3\"\n", "", false},
		{"OTHER_SHIM_VERSION = \"3\"\n", "", false},
		{"", "", false},
	} {
		got, ok := parseVersion(tc.src)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseVersion(%q) = %q, %v; want %q, %v", tc.src, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFilesEmbedded(t *testing.T) {
	files := Files()
	if !bytes.HasPrefix(files["shim.py"], []byte("#!/usr/bin/env python3\n")) {
		t.Fatal("embedded launcher looks wrong")
	}
	for _, m := range []string{"__init__", "__main__", "main", "conn", "calls", "loader", "pool", "wire"} {
		if len(files["rfenv_shim/"+m+".py"]) == 0 {
			t.Errorf("rfenv_shim/%s.py is not embedded (have %d files)", m, len(files))
		}
	}
	for name := range files {
		if strings.Contains(name, "__pycache__") || strings.HasPrefix(name, "test_") {
			t.Errorf("%s should not be embedded", name)
		}
	}
}
