package sshx

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	cases := []struct {
		in   string
		want Target
		str  string
	}{
		{"ssh://host", Target{Host: "host", Socket: DefaultSocket}, "ssh://host/var/run/docker.sock"},
		{"ssh://bob@host:2222", Target{User: "bob", Host: "host", Port: 2222, Socket: DefaultSocket}, "ssh://bob@host:2222/var/run/docker.sock"},
		{"ssh://bob@host/run/user/1000/docker.sock", Target{User: "bob", Host: "host", Socket: "/run/user/1000/docker.sock"}, "ssh://bob@host/run/user/1000/docker.sock"},
		{"ssh://[::1]:22/", Target{Host: "::1", Port: 22, Socket: DefaultSocket}, "ssh://[::1]:22/var/run/docker.sock"},
		{"ssh://root@[fe80::1]", Target{User: "root", Host: "fe80::1", Socket: DefaultSocket}, "ssh://root@[fe80::1]/var/run/docker.sock"},
		{"ssh://myalias", Target{Host: "myalias", Socket: DefaultSocket}, "ssh://myalias/var/run/docker.sock"},
	}
	for _, c := range cases {
		got, err := ParseTarget(c.in)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseTarget(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if got.String() != c.str {
			t.Errorf("ParseTarget(%q).String() = %q, want %q", c.in, got.String(), c.str)
		}
		again, err := ParseTarget(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", c.in, again, err)
		}
	}
	bad := map[string]string{
		"host":                  "scheme",
		"tcp://host":            "scheme",
		"ssh://":                "no host",
		"ssh://bob:pw@host":     "passwords",
		"ssh://host:0":          "port",
		"ssh://host:99999":      "port",
		"ssh://host:abc":        "port", // url.Parse rejects it
		"ssh://host/x?y=1":      "query",
		"ssh://@host":           "empty user",
		"ssh://host:":           "empty port",
		"ssh://[::1":            "ssh://",
		"ssh:///var/run/x.sock": "no host",
	}
	for in, want := range bad {
		_, err := ParseTarget(in)
		if err == nil {
			t.Errorf("ParseTarget(%q) succeeded", in)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTarget(%q) = %v, want it to mention %q", in, err, want)
		}
	}
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USER", "localuser")
	t.Setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(home, ".ssh"), "config", `
Host web
    HostName %h.example.com
    Port 2200
    User deploy
    IdentityFile ~/.ssh/id_%r_%h
    IdentityFile /keys/%u
    UserKnownHostsFile ~/.ssh/kh_web /etc/other_kh
    HashKnownHosts yes

Host noagent
    IdentityAgent none

Host tofu
    StrictHostKeyChecking accept-new

Host *
    User fallback
`)
	sys := writeFile(t, home, "ssh_config", "Host *\n    Port 2022\n    IdentityAgent /from/system\n")

	r, err := Resolve(mustTarget(t, "ssh://web"), Options{SystemConfigFile: sys})
	if err != nil {
		t.Fatal(err)
	}
	want := Resolved{
		Alias:           "web",
		HostName:        "web.example.com",
		Port:            2200,
		User:            "deploy",
		IdentityFiles:   []string{home + "/.ssh/id_deploy_web.example.com", "/keys/localuser"},
		KnownHostsFiles: []string{home + "/.ssh/kh_web", "/etc/other_kh", "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"},
		KnownHostsWrite: home + "/.ssh/kh_web",
		HashKnownHosts:  true,
		AgentSocket:     "/from/system",
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("Resolve(web) =\n%+v\nwant\n%+v", r, want)
	}
	if r.Addr() != "web.example.com:2200" {
		t.Errorf("Addr = %s", r.Addr())
	}

	// URL beats config; options' identity files come first; the system config fills gaps.
	r, err = Resolve(mustTarget(t, "ssh://alice@web:2201"), Options{SystemConfigFile: None, IdentityFiles: []string{"~/k"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.User != "alice" || r.Port != 2201 || r.IdentityFiles[0] != home+"/k" || r.AgentSocket != "/tmp/agent.sock" {
		t.Errorf("Resolve(alice@web:2201) = %+v", r)
	}

	r, err = Resolve(mustTarget(t, "ssh://other"), Options{SystemConfigFile: sys})
	if err != nil {
		t.Fatal(err)
	}
	if r.User != "fallback" || r.Port != 2022 || r.HostName != "other" || !r.DefaultIdentities ||
		r.IdentityFiles[0] != home+"/.ssh/id_ed25519" || r.KnownHostsWrite != home+"/.ssh/known_hosts" || r.AcceptNew {
		t.Errorf("Resolve(other) = %+v", r)
	}

	r, _ = Resolve(mustTarget(t, "ssh://noagent"), Options{SystemConfigFile: None})
	if r.AgentSocket != "" {
		t.Errorf("IdentityAgent none: agent %q", r.AgentSocket)
	}
	r, _ = Resolve(mustTarget(t, "ssh://tofu"), Options{SystemConfigFile: None})
	if !r.AcceptNew {
		t.Errorf("StrictHostKeyChecking accept-new was not honoured")
	}

	// No config at all: the local user.
	r, err = Resolve(mustTarget(t, "ssh://h"), Options{ConfigFile: None, SystemConfigFile: None, AgentSocket: None})
	if err != nil {
		t.Fatal(err)
	}
	if r.User != "localuser" || r.Port != 22 || r.AgentSocket != "" {
		t.Errorf("Resolve(h) = %+v", r)
	}

	// An explicit config file that is missing, or broken, is an error.
	if _, err := Resolve(mustTarget(t, "ssh://h"), Options{ConfigFile: filepath.Join(home, "nope")}); err == nil {
		t.Error("a missing explicit config file was accepted")
	}
	broken := writeFile(t, home, "broken", "Host x\n  Port notanumber\n")
	if _, err := Resolve(mustTarget(t, "ssh://x"), Options{ConfigFile: broken, SystemConfigFile: None}); err == nil || !strings.Contains(err.Error(), "Port") {
		t.Errorf("bad Port: %v", err)
	}
}

func mustTarget(t testing.TB, s string) Target {
	t.Helper()
	tg, err := ParseTarget(s)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
