package iostreams

import "testing"

// TestColorEnabled: colour follows the terminal unless NO_COLOR (which wins), CLICOLOR_FORCE or
// TERM=dumb says otherwise.
func TestColorEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		tty  bool
		env  map[string]string
		want bool
	}{
		{"terminal", true, nil, true},
		{"pipe", false, nil, false},
		{"NO_COLOR on a terminal", true, map[string]string{"NO_COLOR": "1"}, false},
		{"NO_COLOR beats CLICOLOR_FORCE", true, map[string]string{"NO_COLOR": "1", "CLICOLOR_FORCE": "1"}, false},
		{"empty NO_COLOR is unset", true, map[string]string{"NO_COLOR": ""}, true},
		{"CLICOLOR_FORCE on a pipe", false, map[string]string{"CLICOLOR_FORCE": "1"}, true},
		{"CLICOLOR_FORCE=0 does not force", false, map[string]string{"CLICOLOR_FORCE": "0"}, false},
		{"TERM=dumb on a terminal", true, map[string]string{"TERM": "dumb"}, false},
		{"CLICOLOR_FORCE beats TERM=dumb", false, map[string]string{"TERM": "dumb", "CLICOLOR_FORCE": "1"}, true},
		{"another TERM", true, map[string]string{"TERM": "xterm-256color"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			if got := ColorEnabled(tc.tty, getenv); got != tc.want {
				t.Errorf("ColorEnabled(tty=%v, %v) = %v, want %v", tc.tty, tc.env, got, tc.want)
			}
		})
	}
}

// TestTestStreams: test streams are no terminals and have no colour until a test says so; SetTTY
// does not turn colour on by itself.
func TestTestStreams(t *testing.T) {
	s, _, _, _ := Test()
	if s.IsStdoutTTY() || s.IsStderrTTY() || s.IsStdinTTY() || s.ColorEnabled() || s.ErrColorEnabled() {
		t.Fatal("Test() streams should be plain pipes")
	}
	s.SetTTY(true)
	if !s.IsStdoutTTY() || !s.IsStderrTTY() || s.ColorEnabled() || s.ErrColorEnabled() {
		t.Error("SetTTY(true) should mark terminals, colour still off")
	}
	s.SetColor(true)
	if !s.ColorEnabled() || !s.ErrColorEnabled() {
		t.Error("SetColor(true) should turn colour on")
	}
}
