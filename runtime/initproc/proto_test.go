package initproc

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestConfigRoundTrip(t *testing.T) {
	spec := &specs.Spec{
		Version:     "1.0.2",
		Process:     &specs.Process{Args: []string{"true"}, Cwd: "/"},
		Root:        &specs.Root{Path: "rootfs"},
		Annotations: map[string]string{"a": "b"},
		Linux:       &specs.Linux{CgroupsPath: "/x/y"},
	}
	for _, tc := range []struct {
		name string
		in   Config
	}{
		{"create with raw spec", Config{
			ID: "c1", Bundle: "/b\nundle", Spec: spec, FifoPath: "/run/x/exec.fifo",
			State:   specs.State{Status: specs.StateCreating, Pid: 4242},
			NoPivot: true, NewCgroupNS: true, InUserNS: true, PreserveFDs: 2, ConsoleFD: 6,
		}},
		{"exec with encoded spec", Config{
			ID: "c2", Bundle: "/b", Spec: spec, Exec: true, NoNewKeyring: true,
			Process:   &specs.Process{Args: []string{"sh", "-c", "echo"}, Cwd: "/tmp", Env: []string{"A=1"}},
			State:     specs.State{Status: specs.StateRunning, Pid: 1},
			MountNSFD: 9,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.in.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := WriteMsg(&buf, MsgConfig, b); err != nil {
				t.Fatal(err)
			}
			typ, payload, err := ReadMsg(&buf)
			if err != nil || typ != MsgConfig {
				t.Fatalf("ReadMsg: %q, %v", typ, err)
			}
			var got Config
			if err := got.Unmarshal(payload); err != nil {
				t.Fatal(err)
			}
			want := tc.in
			want.State.Version, want.State.ID, want.State.Bundle = specs.Version, want.ID, want.Bundle
			want.State.Annotations = spec.Annotations
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestConfigUnmarshalErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"no spec", []byte{tagID, 1, 'x'}, "no spec"},
		{"length past the end", []byte{tagID, 5, 'x'}, "bad length"},
		{"unknown field", []byte{99, 0}, "unknown field"},
		{"bad number", []byte{tagPid, 1, 0x80}, "bad number"},
		{"bad spec", []byte{tagSpec, 1, 7}, "decode spec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			if err := c.Unmarshal(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReadMsgLimits(t *testing.T) {
	if _, _, err := ReadMsg(bytes.NewReader([]byte{MsgReady, 0xff, 0xff, 0xff, 0xff})); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("oversized frame: err %v", err)
	}
	if _, _, err := ReadMsg(bytes.NewReader([]byte{MsgError, 4, 0, 0, 0, 'a'})); err == nil {
		t.Error("short frame accepted")
	}
}
