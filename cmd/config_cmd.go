package cmd

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/cmd/config"
)

// ConfigOptions are `rfenv config`'s inputs.
type ConfigOptions struct {
	JSON bool
}

// configReport is what `rfenv config --json` prints.
type configReport struct {
	File       string          `json:"file"`
	FileExists bool            `json:"file_exists"`
	Settings   []configSetting `json:"settings"`
}

type configSetting struct {
	Key         string `json:"key"`
	Value       any    `json:"value"` // a string, or a list for hosts
	Source      string `json:"source"`
	EnvVar      string `json:"env"`
	Description string `json:"description"`
}

func newConfigCmd(f *Factory) *cobra.Command {
	o := &ConfigOptions{}
	c := &cobra.Command{
		Use:   "config",
		Short: "Show the effective configuration and where each value comes from",
		Long: `Show each configuration key, its effective value and its source. Values come, in order of
precedence, from a flag (--state-dir; other keys are the defaults of command flags such as
call --timeout and up --lb, which a flag given on that command line still overrides), an RFENV_*
environment variable, the configuration file ($RFENV_CONFIG, else $XDG_CONFIG_HOME/rfenv/config.yaml,
else ~/.config/rfenv/config.yaml), or the built-in default.

The file is YAML with the same keys, for example:

  hosts: [localhost, ssh://gpu1]
  lb: least_busy
  timeout: 90s`,
		Example: `  rfenv config
  RFENV_TIMEOUT=90s rfenv config
  rfenv config --json | jq -r '.settings[] | select(.source != "default") | .key'`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfig(cmd.Context(), f, o, cmd.Flags().Changed("state-dir"))
		},
	}
	c.Flags().BoolVar(&o.JSON, "json", false, "print the configuration as JSON")
	return c
}

func runConfig(_ context.Context, f *Factory, o *ConfigOptions, stateDirFlag bool) error {
	cfg := f.Config
	rep := configReport{File: cfg.File(), Settings: []configSetting{}}
	if rep.File != "" {
		if fi, err := os.Stat(rep.File); err == nil && fi.Mode().IsRegular() {
			rep.FileExists = true
		}
	}
	for _, k := range config.Keys() {
		s := configSetting{Key: k, Value: cfg.String(k), Source: cfg.Source(k), EnvVar: config.EnvVar(k), Description: config.Describe(k)}
		switch k {
		case config.KeyHosts:
			s.Value = cfg.Strings(k)
		case config.KeyStateDir:
			if stateDirFlag {
				s.Source = "flag --state-dir"
			}
			// The directory really used, also when it is the built-in one.
			if client, err := f.Client(); err == nil {
				s.Value = client.Store().Dir()
			} else if f.StateDir != "" {
				s.Value = f.StateDir
			}
		}
		rep.Settings = append(rep.Settings, s)
	}
	p := f.Printer()
	if o.JSON {
		return p.JSON(rep)
	}
	tty := f.IO.IsStdoutTTY()
	rows := make([][]string, 0, len(rep.Settings))
	for _, s := range rep.Settings {
		val := fmt.Sprint(s.Value)
		if list, ok := s.Value.([]string); ok {
			val = strings.Join(list, ",")
		}
		src := s.Source
		if tty && src == "default" {
			src = p.Dim(src)
		}
		rows = append(rows, []string{s.Key, val, src})
	}
	if err := p.Table([]string{"key", "value", "source"}, rows); err != nil {
		return err
	}
	if tty {
		note := ""
		if !rep.FileExists {
			note = p.Dim(" (does not exist)")
		}
		_, err := fmt.Fprintf(f.IO.Out, "\nconfig file: %s%s\n", rep.File, note)
		return err
	}
	return nil
}
