package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestErrorsGoToJSONLog(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log.json")
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"--log-format=json", "--log", log, "--root", dir, "bogus"}, `unknown command "bogus"`},
		{[]string{"--log-format", "json", "--log", log, "--systemd-cgroup", "state", "x"}, "--systemd-cgroup is not supported"},
		{[]string{"--log-format=json", "--log=" + log, "--root", dir, "state", "nope"}, "container does not exist"},
		{[]string{"--log-format=json", "--log", log, "--root", dir, "kill", "nope", "SIGBOGUS"}, `unknown signal "SIGBOGUS"`},
		{[]string{"--log-format=json", "--log", log, "--root", dir, "create", "--bundle", dir, "c1"}, "read bundle config"},
		{[]string{"--log-format=json", "--log", log, "--root", dir, "checkpoint", "c1"}, "not implemented"},
		{[]string{"--log-format=json", "--log", log, "--rootless", "maybe", "list"}, "must be true, false or auto"},
	}
	for _, tt := range tests {
		os.Remove(log)
		if code := realMain(tt.args, 0); code == 0 {
			t.Errorf("%v: exit 0", tt.args)
			continue
		}
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		var line struct{ Level, Msg, Time string }
		if err := json.Unmarshal(b, &line); err != nil || line.Level != "error" || line.Time == "" || !strings.Contains(line.Msg, tt.msg) {
			t.Errorf("%v: log %q (%v), want error containing %q", tt.args, b, err, tt.msg)
		}
	}
}

func TestListEmptyAndSpec(t *testing.T) {
	dir := t.TempDir()
	if code := realMain([]string{"--root", dir, "list", "--format", "json"}, 0); code != 0 {
		t.Fatalf("list exit %d", code)
	}
	if code := realMain([]string{"spec", "--bundle", dir}, 0); code != 0 {
		t.Fatalf("spec exit %d", code)
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil || s.Root.Path != "rootfs" || s.Process.Args[0] != "sh" {
		t.Fatalf("spec = %s, %v", b, err)
	}
	if code := realMain([]string{"spec", "--bundle", dir}, 0); code == 0 {
		t.Fatal("spec overwrote an existing config.json")
	}
}

func TestParseUser(t *testing.T) {
	tests := []struct {
		in       string
		uid, gid uint32
		err      bool
	}{
		{"1000", 1000, 0, false},
		{"1000:100", 1000, 100, false},
		{"root", 0, 0, true},
		{"1:x", 0, 0, true},
	}
	for _, tt := range tests {
		var u specs.User
		err := parseUser(tt.in, &u)
		if (err != nil) != tt.err || !tt.err && (u.UID != tt.uid || u.GID != tt.gid) {
			t.Errorf("parseUser(%q) = %+v, %v", tt.in, u, err)
		}
	}
}

func TestUpdateFlags(t *testing.T) {
	res := &specs.LinuxResources{}
	for name, v := range map[string]string{"memory": "64m", "cpu-quota": "-1", "cpuset-cpus": "0-1", "pids-limit": "100", "cpu-share": "512"} {
		if err := applyUpdateFlag(name, v, res); err != nil {
			t.Fatalf("%s=%s: %v", name, v, err)
		}
	}
	if *res.Memory.Limit != 64<<20 || *res.CPU.Quota != -1 || res.CPU.Cpus != "0-1" || *res.Pids.Limit != 100 || *res.CPU.Shares != 512 {
		t.Fatalf("resources = %+v", res)
	}
	if err := applyUpdateFlag("memory", "lots", res); err == nil {
		t.Fatal("bad size accepted")
	}
	if err := applyUpdateFlag("kernel-memory", "1", res); err == nil {
		t.Fatal("kernel-memory accepted")
	}
}

func TestFeatures(t *testing.T) {
	f := featuresDoc()
	if f["ociVersionMax"] != specs.Version {
		t.Fatalf("features = %v", f)
	}
}
