package cmd

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/shim"
)

// Set at release time with -ldflags "-X github.com/rfenv/rfenv/cmd.version=... ".
var (
	version = ""
	commit  = ""
	date    = ""
)

// VersionInfo describes this build.
type VersionInfo struct {
	Version     string `json:"version"`
	Commit      string `json:"commit"`
	Date        string `json:"date"`
	Go          string `json:"go"`
	Platform    string `json:"platform"`
	ShimVersion string `json:"shim_protocol"`
}

// Version returns the build's version, falling back to the module and VCS data Go records.
func Version() VersionInfo {
	v := VersionInfo{Version: version, Commit: commit, Date: date, Go: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, ShimVersion: shim.Version}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.time":
				if v.Date == "" {
					v.Date = s.Value
				}
			case "vcs.modified":
				if s.Value == "true" && v.Commit != "" && commit == "" {
					v.Commit += "-dirty"
				}
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	return v
}

func newVersionCmd(f *Factory) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print rfenv's version",
		Long:  "Print the version, commit and build date of this rfenv binary.",
		Example: `  rfenv version
  rfenv version --json | jq -r .version`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := Version()
			if asJSON {
				return f.Printer().JSON(v)
			}
			_, err := fmt.Fprintf(f.IO.Out, "rfenv %s (commit %s, built %s, %s, %s, shim protocol %s)\n", v.Version, orNone(v.Commit), orNone(v.Date), v.Go, v.Platform, v.ShimVersion)
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return c
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
