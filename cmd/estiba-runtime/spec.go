package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/runtime/cgroups"
	"github.com/estiba/estiba/runtime/container"
	"github.com/estiba/estiba/runtime/specgen"
)

func (a *app) spec(args []string) error {
	fs := flags("spec")
	rootless := fs.Bool("rootless", false, "a spec for a rootless container")
	bundle := fs.String("bundle", "", "write config.json in this directory")
	fs.StringVar(bundle, "b", "", "write config.json in this directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errUsage("spec [--rootless] [--bundle dir]")
	}
	path := filepath.Join(*bundle, "config.json")
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s already exists: remove it first", path)
	}
	b, err := json.MarshalIndent(specgen.Default(*rootless), "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o666)
}

func (a *app) features(args []string) error {
	if len(args) != 0 {
		return errUsage("features")
	}
	return printJSON(featuresDoc())
}

// featuresDoc is the runtime-spec features document: what this runtime
// accepts, not what this host can do.
func featuresDoc() map[string]any {
	var hooks []string
	for _, h := range []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"} {
		hooks = append(hooks, h)
	}
	var ns []string
	for _, n := range []specs.LinuxNamespaceType{specs.CgroupNamespace, specs.IPCNamespace, specs.MountNamespace,
		specs.NetworkNamespace, specs.PIDNamespace, specs.TimeNamespace, specs.UserNamespace, specs.UTSNamespace} {
		ns = append(ns, string(n))
	}
	return map[string]any{
		"ociVersionMin": "1.0.0",
		"ociVersionMax": specs.Version,
		"hooks":         hooks,
		"mountOptions": []string{"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
			"iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion",
			"nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "private", "rbind", "relatime",
			"remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "silent",
			"slave", "strictatime", "sync", "unbindable"},
		"linux": map[string]any{
			"namespaces":   ns,
			"capabilities": capNames(),
			"cgroup":       map[string]any{"v1": true, "v2": true, "systemd": false, "systemdUser": false},
			"seccomp": map[string]any{
				"enabled": true,
				"actions": []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
					"SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"},
				"operators": []string{"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
					"SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"},
				"archs": []string{"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"},
			},
			"apparmor": map[string]any{"enabled": false},
			"selinux":  map[string]any{"enabled": false},
			"intelRdt": map[string]any{"enabled": false},
		},
		"annotations": map[string]string{"org.opencontainers.runtime-spec.features": "estiba"},
	}
}

func capNames() []string {
	names := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
		"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
		"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
		"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
		"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
		"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
		"CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
		"CAP_CHECKPOINT_RESTORE"}
	return names
}

// events prints the container's stats as JSON events (runc's shape:
// {"type":"stats","id":...,"data":{...}}), once with --stats, else every
// --interval until the container stops.
func (a *app) events(args []string) error {
	fs := flags("events")
	stats := fs.Bool("stats", false, "print stats once and exit")
	interval := fs.Duration("interval", 5e9, "interval between stats")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	if *interval <= 0 {
		return fmt.Errorf("--interval must be positive")
	}
	for {
		st, err := a.rt.Stats(id)
		if err != nil {
			if errors.Is(err, container.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := json.NewEncoder(os.Stdout).Encode(statsEvent(id, st)); err != nil {
			return err
		}
		if *stats {
			return nil
		}
		var ts unix.Timespec = unix.NsecToTimespec(interval.Nanoseconds())
		unix.Nanosleep(&ts, nil)
		if s, err := a.rt.State(id); err != nil || s.Status == specs.StateStopped {
			return nil
		}
	}
}

func statsEvent(id string, st *cgroups.Stats) map[string]any {
	return map[string]any{
		"type": "stats",
		"id":   id,
		"data": map[string]any{
			"cpu": map[string]any{"usage": map[string]any{"total": st.CPU.UsageNanos, "user": st.CPU.UserNanos, "kernel": st.CPU.SystemNanos},
				"throttling": map[string]any{"periods": st.CPU.Periods, "throttledPeriods": st.CPU.ThrottledPeriods, "throttledTime": st.CPU.ThrottledNanos}},
			"memory": map[string]any{"usage": map[string]any{"usage": st.Memory.Usage, "max": st.Memory.MaxUsage, "limit": st.Memory.Limit},
				"swap": map[string]any{"usage": st.Memory.SwapUsage, "limit": st.Memory.SwapLimit}, "cache": st.Memory.Cache},
			"pids": map[string]any{"current": st.Pids.Current, "limit": st.Pids.Limit},
		},
	}
}
