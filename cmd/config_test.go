package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfenv/rfenv/pkg/testutil/e2e"
)

// writeConfig writes the config file the cli's XDG_CONFIG_HOME points at and returns its path.
func writeConfig(t *testing.T, c *cli, body string) string {
	t.Helper()
	p := filepath.Join(c.env["XDG_CONFIG_HOME"], "rfenv", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func settingsOf(t *testing.T, c *cli) map[string]configSetting {
	t.Helper()
	rep := decodeJSON[configReport](t, c.ok("config", "--json").stdout)
	out := map[string]configSetting{}
	for _, s := range rep.Settings {
		out[s.Key] = s
	}
	return out
}

// TestConfigPrecedence: flag > environment > file > built-in, as `rfenv config` reports it and as the
// commands' flag defaults use it.
func TestConfigPrecedence(t *testing.T) {
	stateDir := t.TempDir()
	c := newCLI(t, stateDir)

	// Built-in defaults only; the file does not exist yet.
	rep := decodeJSON[configReport](t, c.ok("config", "--json").stdout)
	if rep.FileExists || rep.File != filepath.Join(c.env["XDG_CONFIG_HOME"], "rfenv", "config.yaml") {
		t.Errorf("file = %s (exists %v), want the missing XDG config file", rep.File, rep.FileExists)
	}
	var keys []string
	for _, s := range rep.Settings {
		keys = append(keys, s.Key)
		if s.Description == "" || s.EnvVar != "RFENV_"+strings.ToUpper(s.Key) {
			t.Errorf("setting %+v lacks its description or variable", s)
		}
	}
	if strings.Join(keys, ",") != "base_image,hosts,lb,progress,ready_timeout,state_dir,timeout,transport" {
		t.Errorf("keys = %v", keys)
	}
	s := settingsOf(t, c)
	if s["timeout"].Value != "5m" || s["timeout"].Source != "default" || s["lb"].Value != "random" || s["transport"].Value != "auto" {
		t.Errorf("built-in defaults: %+v %+v %+v", s["timeout"], s["lb"], s["transport"])
	}
	if s["state_dir"].Source != "flag --state-dir" || s["state_dir"].Value != stateDir {
		t.Errorf("state_dir = %+v, want %s from the flag", s["state_dir"], stateDir)
	}

	// The file overrides built-ins.
	file := writeConfig(t, c, "lb: least_busy\ntimeout: 2m\nhosts: [localhost, ssh://gpu1]\nbase_image: registry.local/py:3\n")
	s = settingsOf(t, c)
	for key, want := range map[string]string{"lb": "least_busy", "timeout": "2m", "base_image": "registry.local/py:3"} {
		if s[key].Value != want || s[key].Source != "file "+file {
			t.Errorf("%s = %+v, want %s from the file", key, s[key], want)
		}
	}
	if hosts, _ := s["hosts"].Value.([]any); len(hosts) != 2 || hosts[1] != "ssh://gpu1" {
		t.Errorf("hosts = %#v", s["hosts"].Value)
	}
	if s["progress"].Source != "default" {
		t.Errorf("progress = %+v, want the default", s["progress"])
	}

	// The environment overrides the file.
	c.env["RFENV_TIMEOUT"] = "1s"
	c.env["RFENV_HOSTS"] = "localhost"
	s = settingsOf(t, c)
	if s["timeout"].Value != "1s" || s["timeout"].Source != "env RFENV_TIMEOUT" {
		t.Errorf("timeout = %+v, want 1s from RFENV_TIMEOUT", s["timeout"])
	}
	if hosts, _ := s["hosts"].Value.([]any); len(hosts) != 1 || s["hosts"].Source != "env RFENV_HOSTS" {
		t.Errorf("hosts = %+v", s["hosts"])
	}
	if s["lb"].Source != "file "+file {
		t.Errorf("lb = %+v, want it still from the file", s["lb"])
	}

	// The table: one row per key with its source; plain TSV when piped.
	table := c.ok("config").stdout
	for _, row := range []string{"KEY\tVALUE\tSOURCE\n", "lb\tleast_busy\tfile " + file + "\n", "timeout\t1s\tenv RFENV_TIMEOUT\n", "progress\tauto\tdefault\n", "hosts\tlocalhost\tenv RFENV_HOSTS\n"} {
		if !strings.Contains(table, row) {
			t.Errorf("config table lacks %q:\n%s", row, table)
		}
	}

	// Flags' defaults come from the configuration: `call --timeout` from RFENV_TIMEOUT, `up --lb`
	// from the file, `build --base-image` from the file.
	for _, tc := range []struct{ cmd, flag, want string }{
		{"call", "--timeout", `(default "1s")`},
		{"up", "--lb", `(default "least_busy")`},
		{"build", "--base-image", `(default "registry.local/py:3")`},
		{"init", "--base-image", `(default "registry.local/py:3")`},
	} {
		help := c.ok(tc.cmd, "--help").stdout
		line := ""
		for _, l := range strings.Split(help, "\n") {
			if strings.Contains(l, tc.flag+" ") {
				line = l
			}
		}
		if !strings.Contains(line, tc.want) {
			t.Errorf("%s %s: help line %q lacks %s", tc.cmd, tc.flag, line, tc.want)
		}
	}

	// A state directory from the environment, and the flag beating it.
	envDir := t.TempDir()
	c.env["RFENV_STATE_DIR"] = envDir
	if s := settingsOf(t, c); s["state_dir"].Source != "flag --state-dir" || s["state_dir"].Value != stateDir {
		t.Errorf("state_dir = %+v, want the flag's %s over RFENV_STATE_DIR", s["state_dir"], stateDir)
	}

	// Bad configuration: usage errors naming the file or the variable.
	writeConfig(t, c, "colour: always\n")
	if r := c.fails(ExitUsage, "config"); !strings.Contains(r.stderr, file) || !strings.Contains(r.stderr, `unknown key "colour"`) {
		t.Errorf("unknown key: %q", r.stderr)
	}
	writeConfig(t, c, "lb: [unclosed\n")
	if r := c.fails(ExitUsage, "config"); !strings.Contains(r.stderr, file) {
		t.Errorf("malformed file: %q", r.stderr)
	}
	writeConfig(t, c, "lb: round_robin\n")
	c.env["RFENV_TIMEOUT"] = "soon"
	if r := c.fails(ExitUsage, "config"); !strings.Contains(r.stderr, "RFENV_TIMEOUT") {
		t.Errorf("bad RFENV_TIMEOUT: %q", r.stderr)
	}
}

// TestE2EConfigPrecedence: the configured defaults really drive the commands, and a flag on the
// command line beats them, on a real environment.
func TestE2EConfigPrecedence(t *testing.T) {
	c := newCLI(t, e2e.StateDir(t))
	writeConfig(t, c, "lb: least_busy\ntimeout: 2m\n")
	c.env["RFENV_TIMEOUT"] = "1s"
	const name = "rfx-cfg"

	up := decodeJSON[envView](t, c.ok("up", e2e.Image(t, "actor"), "--name", name, "--json").stdout)
	if up.Balancer != "least_busy" {
		t.Errorf("up balancer = %s, want least_busy from the config file", up.Balancer)
	}
	// RFENV_TIMEOUT=1s beats the file's 2m: a 3-second call passes its deadline...
	r := c.fails(ExitDeadline, "call", name, "sleep", "--arg", "seconds=3")
	if r.elapsed.Seconds() > 2.5 {
		t.Errorf("the call took %s: the 1s deadline from RFENV_TIMEOUT was not applied", r.elapsed)
	}
	// ...and --timeout beats the environment.
	if got := strings.TrimSpace(c.ok("call", name, "sleep", "--arg", "seconds=1.5", "--timeout", "30s").stdout); got != "1.5" {
		t.Errorf("sleep = %s", got)
	}
	c.ok("down", name)

	// A flag beats the file.
	up = decodeJSON[envView](t, c.ok("up", e2e.Image(t, "actor"), "--name", name, "--lb", "round_robin", "--json").stdout)
	if up.Balancer != "round_robin" {
		t.Errorf("up --lb round_robin gave %s", up.Balancer)
	}
	c.ok("down", name)
}
