package main

import "testing"

// The command lines estibad serves are handed to it; the rest is the CLI's.
func TestDaemonCommand(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"estiba", "daemon", "-H", "unix:///x"}, true},
		{[]string{"/usr/bin/estiba", "monitor", "--exec-root", "/run/estiba"}, true},
		{[]string{"/proc/self/exe", "monitor-spawner"}, true},
		{[]string{"/proc/self/fd/27", "init"}, true},
		{[]string{"/sbin/estiba-init", "sh"}, true},
		{[]string{"estiba"}, false},
		{[]string{"estiba", "run", "-d", "img", "daemon"}, false},
		{[]string{"estiba", "-H", "unix:///x", "ps"}, false},
		{[]string{"estiba", "--version"}, false},
	} {
		if got := daemonCommand(tt.args); got != tt.want {
			t.Errorf("daemonCommand(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}
