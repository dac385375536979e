// Package config gives commands their defaults from $XDG_CONFIG_HOME/rfenv/config.yaml and RFENV_*
// environment variables, on top of built-in values. It is the only package that imports viper.
// Precedence is flag > environment > file > built-in: commands use these values as their flags'
// defaults, so a flag given on the command line always wins.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/viper"
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
)

var defaults = map[string]any{
	KeyHosts:        []string{"localhost"},
	KeyBalancer:     "random",
	KeyTimeout:      "5m",
	KeyReadyTimeout: "60s",
	KeyStateDir:     "",
	KeyBaseImage:    "python:3.12-slim",
	KeyProgress:     "auto",
}

var descriptions = map[string]string{
	KeyHosts:        "Docker hosts for build, up and down",
	KeyBalancer:     "balancing strategy: random, round_robin, least_busy",
	KeyTimeout:      "deadline of a call without --timeout",
	KeyReadyTimeout: "how long up waits for replicas to be ready",
	KeyStateDir:     "state directory (default $XDG_STATE_HOME/rfenv)",
	KeyBaseImage:    "FROM of the default Dockerfile",
	KeyProgress:     "build progress: auto, plain, quiet, rawjson",
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

// Config is the loaded configuration.
type Config struct {
	v       *viper.Viper
	file    string
	inFile  map[string]bool
	getenv  func(string) string
	fileErr error
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
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	c := &Config{v: v, file: Path(getenv), inFile: map[string]bool{}, getenv: getenv}
	if c.file != "" {
		v.SetConfigFile(c.file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			var notFound viper.ConfigFileNotFoundError
			if !errors.As(err, &notFound) && !os.IsNotExist(unwrapPathError(err)) {
				if _, statErr := os.Stat(c.file); statErr == nil {
					return nil, fmt.Errorf("config file %s: %w (fix or remove it)", c.file, err)
				}
			}
		}
		for _, k := range v.AllKeys() {
			if _, known := defaults[k]; !known && v.InConfig(k) {
				return nil, fmt.Errorf("config file %s: unknown key %q (known: %s)", c.file, k, strings.Join(Keys(), ", "))
			}
		}
		for k := range defaults {
			c.inFile[k] = v.InConfig(k)
		}
	}
	// Environment variables override the file. Bound explicitly (not AutomaticEnv) so that the
	// provenance of each value is known.
	for k := range defaults {
		if val, ok := lookup(getenv, EnvVar(k)); ok {
			if k == KeyHosts {
				v.Set(k, splitList(val))
			} else {
				v.Set(k, val)
			}
		}
	}
	for _, k := range []string{KeyTimeout, KeyReadyTimeout} {
		if _, err := ParseDuration(v.GetString(k)); err != nil {
			return nil, fmt.Errorf("%s (%s): %w", k, c.Source(k), err)
		}
	}
	return c, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe
	}
	return err
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

// String returns a key's value.
func (c *Config) String(key string) string { return c.v.GetString(key) }

// Strings returns a list key's value.
func (c *Config) Strings(key string) []string {
	out := c.v.GetStringSlice(key)
	if len(out) == 1 && strings.Contains(out[0], ",") {
		return splitList(out[0])
	}
	return out
}

// Duration returns a duration key's value (already validated by Load).
func (c *Config) Duration(key string) time.Duration {
	d, _ := ParseDuration(c.v.GetString(key))
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
