// Package shim embeds the in-container HTTP server that rfenv copies into function-based images:
// the Python package rfenv_shim/ and its launcher server.py, copied to ImageDir (the launcher as
// ServerPath) and run as the container's PID 1 with exec-form CMD ["python3", ServerPath].
//
// The wire protocol it speaks is ARCHITECTURE.md's "Wire protocol between rfenv and the shim".
// Its version is defined once, as SHIM_VERSION in rfenv_shim/__init__.py; Version is read from
// there, and images are labelled rfenv.shim.version=<Version>.
package shim

import (
	"embed"
	"io/fs"
	"path"
	"strings"
)

// src holds the launcher and every module of the package (patterns, unlike a bare directory,
// include __init__.py and __main__.py; *.py leaves out __pycache__).
//
//go:embed server.py rfenv_shim/*.py
var src embed.FS

// Version is the wire-protocol version the embedded server speaks.
var Version = mustVersion()

// DefaultPort is the port the shim listens on unless RFENV_PORT says otherwise.
const DefaultPort = 8000

// ImageDir is the directory of the image that holds the shim (the launcher and rfenv_shim/).
const ImageDir = "/rfenv"

// ServerPath is where the image holds the launcher.
const ServerPath = ImageDir + "/shim.py"

// Files returns the shim's files by their path relative to ImageDir: "shim.py" (the launcher) and
// "rfenv_shim/NAME.py" for each module.
func Files() map[string][]byte {
	out := map[string][]byte{}
	launcher, err := src.ReadFile("server.py")
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	out[path.Base(ServerPath)] = launcher
	mods, err := fs.Glob(src, "rfenv_shim/*.py")
	if err != nil {
		panic(err)
	}
	for _, m := range mods {
		b, err := src.ReadFile(m)
		if err != nil {
			panic(err)
		}
		out[m] = b
	}
	return out
}

// mustVersion reads SHIM_VERSION at package initialisation, which every rfenv process runs: a line
// scan, because compiling a regular expression there cost each `rfenv call` about 50 µs.
func mustVersion() string {
	b, err := src.ReadFile("rfenv_shim/__init__.py")
	if err != nil {
		panic(err)
	}
	v, ok := parseVersion(string(b))
	if !ok {
		panic("shim: rfenv_shim/__init__.py does not define SHIM_VERSION")
	}
	return v
}

// parseVersion finds the line `SHIM_VERSION = "N"` (N decimal digits) in a Python module.
func parseVersion(src string) (string, bool) {
	for _, line := range strings.Split(src, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\r"), `SHIM_VERSION = "`)
		if !ok {
			continue
		}
		v, ok = strings.CutSuffix(v, `"`)
		if ok && v != "" && strings.Trim(v, "0123456789") == "" {
			return v, true
		}
	}
	return "", false
}
