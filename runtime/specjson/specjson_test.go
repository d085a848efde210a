package specjson

import (
	"encoding/json"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/estiba/estiba/runtime/specgen"
)

// full is a spec touching every kind of field: pointers to numbers and
// structs, embedded structs (weightDevice), maps, empty and null slices,
// escapes, unknown keys and the Windows section (decoded by encoding/json).
const full = `{
 "ociVersion": "1.2.0", "unknownTop": {"a": [1, 2.5e3, -0, true, false, null, "x\"y"]},
 "process": {"terminal": true, "consoleSize": {"height": 24, "width": 80},
  "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6]},
  "args": ["/bin/sh", "-c", "echo \"hi\" \\ \u00e9\u4e2d\/ \t"], "env": [], "cwd": "/",
  "capabilities": {"bounding": ["CAP_KILL"], "effective": null},
  "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
  "noNewPrivileges": true, "oomScoreAdj": -500,
  "scheduler": {"policy": "SCHED_OTHER", "nice": -2, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
  "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
  "execCPUAffinity": {"initial": "0", "final": "0-1"}},
 "root": {"path": "rootfs", "readonly": false},
 "hostname": "h\u00e9", "domainname": "d",
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"],
  "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}],
 "hooks": {"prestart": [{"path": "/bin/true", "args": ["true"], "env": ["A=b"], "timeout": 3}], "poststop": []},
 "annotations": {"a": "b", "c": "", "\u00e9": "\n"},
 "linux": {
  "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
  "sysctl": {"net.ipv4.ip_forward": "1"},
  "resources": {
   "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
   "memory": {"limit": 1048576, "reservation": -1, "swap": 9223372036854775807, "swappiness": 18446744073709551615, "disableOOMKiller": false},
   "cpu": {"shares": 1024, "quota": 100000, "period": 100000, "cpus": "0-1", "idle": 0},
   "pids": {"limit": 100},
   "blockIO": {"weight": 10, "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}],
    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}]},
   "hugepageLimits": [{"pageSize": "2MB", "limit": 9223372036854775807}],
   "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
   "unified": {"memory.high": "max"}
  },
  "cgroupsPath": "/x/y", "namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}],
  "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}],
  "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
   "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW",
    "args": [{"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]},
  "maskedPaths": ["/proc/kcore"], "readonlyPaths": null,
  "timeOffsets": {"monotonic": {"secs": -5, "nanosecs": 7}},
  "intelRdt": {"closID": "c", "schemata": ["L3:0=f"]},
  "personality": {"domain": "LINUX", "flags": []}
 },
 "windows": {"layerFolders": ["C:\\a"], "credentialSpec": {"any": [1, {"x": null}]}},
 "vm": null
}`

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	def, err := json.Marshal(specgen.Default(false))
	if err != nil {
		t.Fatal(err)
	}
	rootless, _ := json.Marshal(specgen.Default(true))
	tests := []struct {
		name string
		doc  string
		fast bool // the generated decoder must take it alone
	}{
		{"default", string(def), true},
		{"rootless", string(rootless), true},
		{"full", full, true},
		{"empty", `{}`, true},
		{"nulls", `{"process": null, "linux": {"resources": null, "sysctl": null}, "ociVersion": null}`, true},
		{"case-insensitive key", `{"OCIVERSION": "1.0.0"}`, false},
		{"duplicate key", `{"process": {"cwd": "/"}, "process": {"args": ["x"]}}`, false},
		{"surrogate pair", `{"hostname": "\ud83d\ude00"}`, false},
		{"lone surrogate", `{"hostname": "\ud83d"}`, false},
		{"invalid utf-8", "{\"hostname\": \"\xff\"}", false},
		{"fraction into int", `{"process": {"user": {"uid": 1.0}}}`, false},
		{"negative uint", `{"process": {"user": {"uid": -1}}}`, false},
		{"overflow", `{"process": {"user": {"uid": 4294967296}}}`, false},
		{"string for number", `{"process": {"user": {"uid": "0"}}}`, false},
		{"number for string", `{"hostname": 5}`, false},
		{"trailing comma", `{"hostname": "x",}`, false},
		{"trailing data", `{} {}`, false},
		{"leading zero", `{"unknown": 01}`, false},
		{"not an object", `[]`, false},
		{"top-level null", `null`, false},
		{"control char", "{\"hostname\": \"a\tb\"}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, fast := decodeFast([]byte(tt.doc))
			if fast != tt.fast {
				t.Errorf("generated decoder took it: %v, want %v", fast, tt.fast)
			}
			compare(t, []byte(tt.doc))
		})
	}
}

// compare checks Decode against json.Unmarshal: the same spec, or both an
// error.
func compare(t *testing.T, b []byte) {
	t.Helper()
	want := new(specs.Spec)
	wantErr := json.Unmarshal(b, want)
	got, err := Decode(b)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Decode error %v, json.Unmarshal's %v", err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("Decode:\n%s\njson.Unmarshal:\n%s", g, w)
	}
}

// FuzzDecode: whatever the generated decoder accepts, encoding/json
// accepts and decodes to the same spec.
func FuzzDecode(f *testing.F) {
	def, _ := json.Marshal(specgen.Default(false))
	f.Add(def)
	f.Add([]byte(full))
	f.Add([]byte(`{"process": {"user": {"uid": 1e2}}, "hostname": "\u0041"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodeFast(b)
		if !ok {
			return
		}
		want := new(specs.Spec)
		if err := json.Unmarshal(b, want); err != nil {
			t.Fatalf("generated decoder accepted what encoding/json refuses (%v)", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("generated decoder differs from encoding/json")
		}
	})
}
