// Package config gives commands their defaults from $XDG_CONFIG_HOME/rfenv/config.yaml and RFENV_*
// environment variables, on top of the library's built-in values (pkg/protocol). Precedence is flag >
// environment > file > built-in: commands use these values as their flags' defaults, so a flag given
// on the command line always wins.
//
// The file is one flat YAML mapping, read with a YAML library into a map: viper, which did this
// before, cost every rfenv process (every `rfenv call`) its package initialisation for features
// this file never used (remote stores, file watching, TOML/INI/HCL).
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rfenv/rfenv/pkg/protocol"
)

// Keys and their built-in defaults.
const (
	KeyHosts        = "hosts"
	KeyBalancer     = "lb"
	KeyTimeout      = "timeout"
	KeyReadyTimeout = "ready_timeout"
	KeyStateDir     = "state_dir"
	KeyBaseImage    = "base_image"
	KeyProgress     = "progress"
	KeyTransport    = "transport"
)

// defaults are the library's, never copies of them.
var defaults = map[string][]string{
	KeyHosts:        {protocol.DefaultHost},
	KeyBalancer:     {protocol.DefaultBalancer},
	KeyTimeout:      {FormatDuration(protocol.DefaultCallTimeout)},
	KeyReadyTimeout: {FormatDuration(protocol.DefaultReadyTimeout)},
	KeyStateDir:     {""},
	KeyBaseImage:    {protocol.DefaultBaseImage},
	KeyProgress:     {protocol.DefaultProgress},
	KeyTransport:    {protocol.DefaultTransport},
}

var descriptions = map[string]string{
	KeyHosts:        "Docker hosts for build, up and down",
	KeyBalancer:     "balancing strategy: random, round_robin, least_busy",
	KeyTimeout:      "deadline of a call without --timeout",
	KeyReadyTimeout: "how long up waits for replicas to be ready",
	KeyStateDir:     "state directory (default $XDG_STATE_HOME/rfenv)",
	KeyBaseImage:    "FROM of the default Dockerfile",
	KeyProgress:     "build progress: auto, plain, quiet, rawjson",
	KeyTransport:    "how calls reach replicas on Docker hosts: auto, direct, published",
}

// Keys lists the configuration keys in a stable order.
func Keys() []string {
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Describe says what a key is for.
func Describe(key string) string { return descriptions[key] }

// EnvVar is the environment variable that sets a key.
func EnvVar(key string) string { return "RFENV_" + strings.ToUpper(key) }

// FormatDuration writes a duration as the file would hold it: "5m", "60s", "1m30s".
func FormatDuration(d time.Duration) string {
	if d%time.Second == 0 && d < 2*time.Minute {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	if d%time.Minute == 0 && d < time.Hour {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// Config is the loaded configuration.
type Config struct {
	values map[string][]string
	file   string
	inFile map[string]bool
	getenv func(string) string
}

// Path is the configuration file's location: $RFENV_CONFIG, else $XDG_CONFIG_HOME/rfenv/config.yaml,
// else ~/.config/rfenv/config.yaml.
func Path(getenv func(string) string) string {
	if p := getenv("RFENV_CONFIG"); p != "" {
		return p
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "rfenv", "config.yaml")
}

// Load reads the configuration. A missing file is fine; a malformed one is an error naming it.
func Load(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := &Config{values: map[string][]string{}, file: Path(getenv), inFile: map[string]bool{}, getenv: getenv}
	for k, d := range defaults {
		c.values[k] = d
	}
	if c.file != "" {
		if err := c.readFile(); err != nil {
			return nil, err
		}
	}
	// Environment variables override the file.
	for k := range defaults {
		if val, ok := lookup(getenv, EnvVar(k)); ok {
			if k == KeyHosts {
				c.values[k] = splitList(val)
			} else {
				c.values[k] = []string{val}
			}
		}
	}
	for _, k := range []string{KeyTimeout, KeyReadyTimeout} {
		if _, err := ParseDuration(c.String(k)); err != nil {
			return nil, fmt.Errorf("%s (%s): %w", k, c.Source(k), err)
		}
	}
	return c, nil
}

// readFile reads the file's keys over the defaults: scalars, or lists for hosts.
func (c *Config) readFile() error {
	raw, err := os.ReadFile(c.file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config file %s: %w", c.file, err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("config file %s: %w (fix or remove it)", c.file, err)
	}
	for key, val := range m {
		k := strings.ToLower(key)
		if _, known := defaults[k]; !known {
			return fmt.Errorf("config file %s: unknown key %q (known: %s)", c.file, key, strings.Join(Keys(), ", "))
		}
		var vals []string
		switch v := val.(type) {
		case nil:
			continue
		case []any:
			for _, e := range v {
				vals = append(vals, fmt.Sprint(e))
			}
		case map[string]any:
			return fmt.Errorf("config file %s: key %q holds a mapping; it takes a value (fix or remove it)", c.file, key)
		default:
			vals = []string{fmt.Sprint(v)}
		}
		c.values[k], c.inFile[k] = vals, true
	}
	return nil
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, p)
	}
	return out
}

// File is the configuration file's path.
func (c *Config) File() string { return c.file }

// String returns a key's value (a list's items joined by commas).
func (c *Config) String(key string) string { return strings.Join(c.values[key], ",") }

// Strings returns a list key's value.
func (c *Config) Strings(key string) []string {
	out := c.values[key]
	if len(out) == 1 && strings.Contains(out[0], ",") {
		return splitList(out[0])
	}
	return append([]string(nil), out...)
}

// Duration returns a duration key's value (already validated by Load).
func (c *Config) Duration(key string) time.Duration {
	d, _ := ParseDuration(c.String(key))
	return d
}

// Source says where a key's value comes from: "env RFENV_X", "file PATH" or "default".
func (c *Config) Source(key string) string {
	if _, ok := lookup(c.getenv, EnvVar(key)); ok {
		return "env " + EnvVar(key)
	}
	if c.inFile[key] {
		return "file " + c.file
	}
	return "default"
}

// ParseDuration accepts Go durations ("90s", "1m30s") and bare seconds ("90", "1.5").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration: use e.g. 90, 90s or 1m30s")
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return 0, fmt.Errorf("duration %q must be positive", s)
		}
		return d, nil
	}
	var secs float64
	if _, err := fmt.Sscanf(s, "%g", &secs); err == nil && fmt.Sprint(secs) != "" && isNumber(s) {
		if secs <= 0 {
			return 0, fmt.Errorf("duration %q must be positive", s)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("invalid duration %q: use e.g. 90, 90s or 1m30s", s)
}

func isNumber(s string) bool {
	dot := false
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
		case r == '.' && !dot:
			dot = true
		default:
			_ = i
			return false
		}
	}
	return len(s) > 0
}
