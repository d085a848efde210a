package specgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/internal/testutil"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func ptr[T any](v T) *T { return &v }

func TestGenerate(t *testing.T) {
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nwww:x:33:34::/:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644)
	img := imagespec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}, Env: []string{"A=img", "B=img"}, WorkingDir: "/srv"}
	tests := []struct {
		name  string
		cfg   types.Config
		hc    types.HostConfig
		err   error
		check func(t *testing.T, s *specs.Spec)
	}{
		{name: "image defaults", check: func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Process.Args, []string{"/entry", "serve"}) || s.Process.Cwd != "/srv" {
				t.Errorf("args %q cwd %q", s.Process.Args, s.Process.Cwd)
			}
			if !slices.Equal(s.Process.Capabilities.Bounding, sorted(DefaultCaps)) {
				t.Errorf("caps %v", s.Process.Capabilities.Bounding)
			}
			if !s.Process.NoNewPrivileges || s.Linux.Seccomp == nil || len(s.Linux.MaskedPaths) != len(MaskedPaths) {
				t.Errorf("secure defaults missing")
			}
			if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 0 {
				t.Errorf("oomScoreAdj %v: want 0 written, not inherited from the monitor", s.Process.OOMScoreAdj)
			}
			if *s.Linux.Resources.Pids.Limit != 4096 {
				t.Errorf("pids %d", *s.Linux.Resources.Pids.Limit)
			}
			if !hasNS(s, specs.CgroupNamespace) || !hasNS(s, specs.UserNamespace) || !hasNS(s, specs.NetworkNamespace) {
				t.Errorf("namespaces %v", s.Linux.Namespaces)
			}
			if s.Linux.UIDMappings[0].HostID != 200000 || s.Linux.UIDMappings[0].Size != 65536 {
				t.Errorf("uid map %v", s.Linux.UIDMappings)
			}
			if v := s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"]; v != "0" {
				t.Errorf("ip_unprivileged_port_start %q: want Docker's 0 in the container's own network namespace", v)
			}
		}},
		{name: "host network: no network sysctl", hc: types.HostConfig{NetworkMode: "host"}, check: func(t *testing.T, s *specs.Spec) {
			if _, ok := s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"]; ok || hasNS(s, specs.NetworkNamespace) {
				t.Errorf("sysctl %v namespaces %v", s.Linux.Sysctl, s.Linux.Namespaces)
			}
		}},
		{name: "cmd overrides image cmd", cfg: types.Config{Cmd: []string{"x"}}, check: func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Process.Args, []string{"/entry", "x"}) {
				t.Errorf("args %q", s.Process.Args)
			}
		}},
		{name: "entrypoint drops image cmd", cfg: types.Config{Entrypoint: []string{"/bin/sh"}}, check: func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Process.Args, []string{"/bin/sh"}) {
				t.Errorf("args %q", s.Process.Args)
			}
		}},
		{name: "env merge", cfg: types.Config{Env: []string{"B=req", "C=req", "UNSET"}}, check: func(t *testing.T, s *specs.Spec) {
			for _, want := range []string{"A=img", "B=req", "C=req"} {
				if !slices.Contains(s.Process.Env, want) {
					t.Errorf("env %q lacks %s", s.Process.Env, want)
				}
			}
		}},
		{name: "user by name and group", cfg: types.Config{User: "www:staff"}, check: func(t *testing.T, s *specs.Spec) {
			if s.Process.User.UID != 33 || s.Process.User.GID != 50 || s.Process.Capabilities.Effective != nil {
				t.Errorf("user %+v caps %v", s.Process.User, s.Process.Capabilities.Effective)
			}
		}},
		{name: "unknown user", cfg: types.Config{User: "nobody"}, err: errdefs.ErrInvalid},
		{name: "cap add drop", hc: types.HostConfig{CapAdd: []string{"net_admin"}, CapDrop: []string{"ALL"}}, check: func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Process.Capabilities.Bounding, []string{"CAP_NET_ADMIN"}) {
				t.Errorf("caps %v", s.Process.Capabilities.Bounding)
			}
		}},
		{name: "bad cap", hc: types.HostConfig{CapAdd: []string{"FLY"}}, err: errdefs.ErrInvalid},
		{name: "privileged", hc: types.HostConfig{Privileged: true}, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 || s.Process.NoNewPrivileges || len(s.Process.Capabilities.Bounding) != len(AllCaps) {
				t.Errorf("privileged kept confinement")
			}
		}},
		{name: "resources", hc: types.HostConfig{Resources: types.Resources{Memory: 1 << 20, NanoCPUs: 1_500_000_000, CPUShares: 512, CpusetCpus: "0", PidsLimit: ptr(int64(10)),
			Ulimits: []*types.Ulimit{{Name: "nofile", Soft: 100, Hard: 200}}}}, check: func(t *testing.T, s *specs.Spec) {
			r := s.Linux.Resources
			if *r.Memory.Limit != 1<<20 || *r.Memory.Swap != 2<<20 || *r.CPU.Quota != 150000 || *r.CPU.Shares != 512 || *r.Pids.Limit != 10 {
				t.Errorf("resources %+v", r)
			}
			if s.Process.Rlimits[0] != (specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}) {
				t.Errorf("rlimits %v", s.Process.Rlimits)
			}
		}},
		{name: "swap below memory", hc: types.HostConfig{Resources: types.Resources{Memory: 2 << 20, MemorySwap: 1 << 20}}, err: errdefs.ErrInvalid},
		{name: "seccomp unconfined and nnp off", hc: types.HostConfig{SecurityOpt: []string{"seccomp=unconfined", "no-new-privileges=false"}}, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Seccomp != nil || s.Process.NoNewPrivileges {
				t.Errorf("seccomp %v nnp %v", s.Linux.Seccomp != nil, s.Process.NoNewPrivileges)
			}
		}},
		{name: "apparmor refused", hc: types.HostConfig{SecurityOpt: []string{"apparmor=x"}}, err: errdefs.ErrInvalid},
		{name: "init, tmpfs, volume, readonly", hc: types.HostConfig{Init: ptr(true), Tmpfs: map[string]string{"/run": "size=1m"},
			Binds: []string{"data:/data:ro"}, ReadonlyRootfs: true}, check: func(t *testing.T, s *specs.Spec) {
			if s.Process.Args[0] != InitDest || !s.Root.Readonly {
				t.Errorf("args %q ro %v", s.Process.Args, s.Root.Readonly)
			}
			dests := map[string]specs.Mount{}
			for _, m := range s.Mounts {
				dests[m.Destination] = m
			}
			if dests["/run"].Type != "tmpfs" || !slices.Contains(dests["/data"].Options, "ro") || dests[InitDest].Source != "/init" {
				t.Errorf("mounts %+v", s.Mounts)
			}
		}},
		{name: "relative bind target", hc: types.HostConfig{Binds: []string{"/tmp:rel"}}, err: errdefs.ErrInvalid},
		{name: "env string over MAX_ARG_STRLEN", cfg: types.Config{Env: []string{"BIG=" + strings.Repeat("x", 128<<10)}}, err: errdefs.ErrInvalid},
		{name: "argument over MAX_ARG_STRLEN", cfg: types.Config{Cmd: []string{strings.Repeat("x", 128<<10)}}, err: errdefs.ErrInvalid},
		{name: "env total over a quarter of the stack", cfg: types.Config{Env: manyVars(24, 100<<10)}, err: errdefs.ErrInvalid},
		{name: "env total within a larger --ulimit stack", cfg: types.Config{Env: manyVars(24, 100<<10)},
			hc:    types.HostConfig{Resources: types.Resources{Ulimits: []*types.Ulimit{{Name: "stack", Soft: 16 << 20, Hard: 16 << 20}}}},
			check: func(t *testing.T, s *specs.Spec) {}},
		{name: "env total within an unlimited --ulimit stack", cfg: types.Config{Env: manyVars(24, 100<<10)},
			hc:    types.HostConfig{Resources: types.Resources{Ulimits: []*types.Ulimit{{Name: "stack", Soft: -1, Hard: -1}}}},
			check: func(t *testing.T, s *specs.Spec) {}},
		{name: "env total over the kernel's cap of 6 MiB", cfg: types.Config{Env: manyVars(64, 100<<10)},
			hc:  types.HostConfig{Resources: types.Resources{Ulimits: []*types.Ulimit{{Name: "stack", Soft: -1, Hard: -1}}}},
			err: errdefs.ErrInvalid},
		{name: "env string just under MAX_ARG_STRLEN", cfg: types.Config{Env: []string{"BIG=" + strings.Repeat("x", 128<<10-6)}}, check: func(t *testing.T, s *specs.Spec) {}},
		{name: "hostname with a newline", cfg: types.Config{Hostname: "x\n6.6.6.6 victim"}, err: errdefs.ErrInvalid},
		{name: "hostname over 64 bytes", cfg: types.Config{Hostname: strings.Repeat("a", 65)}, err: errdefs.ErrInvalid},
		{name: "domainname with a space", cfg: types.Config{Domainname: "a b"}, err: errdefs.ErrInvalid},
		{name: "hostname and domainname", cfg: types.Config{Hostname: "web-1", Domainname: "example.com"}, check: func(t *testing.T, s *specs.Spec) {
			if s.Hostname != "web-1" || s.Domainname != "example.com" {
				t.Errorf("hostname %q domainname %q", s.Hostname, s.Domainname)
			}
		}},
		{name: "uid outside the user namespace", cfg: types.Config{User: "70000"}, err: errdefs.ErrInvalid},
		{name: "gid outside the user namespace", cfg: types.Config{User: "0:65536"}, err: errdefs.ErrInvalid},
		{name: "high uid with the host's ids", cfg: types.Config{User: "70000"}, hc: types.HostConfig{UsernsMode: "host"}, check: func(t *testing.T, s *specs.Spec) {
			if s.Process.User.UID != 70000 {
				t.Errorf("user %+v", s.Process.User)
			}
		}},
		{name: "host network", hc: types.HostConfig{NetworkMode: "host"}, check: func(t *testing.T, s *specs.Spec) {
			if hasNS(s, specs.NetworkNamespace) {
				t.Error("host network got a netns")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, hc := tc.cfg, tc.hc
			in := &Input{ID: "0123456789abcdef", Config: &cfg, HostConfig: &hc, Image: img, Rootfs: rootfs,
				ContainerDir: t.TempDir(), UsernsBase: 200000}
			s, err := Generate(in, &Defaults{PidsLimit: 4096, InitPath: "/init", VolumesDir: t.TempDir()})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

// manyVars is n variables of size bytes each.
func manyVars(n, size int) []string {
	var env []string
	for i := 0; i < n; i++ {
		env = append(env, fmt.Sprintf("V%02d=%s", i, strings.Repeat("x", size-4)))
	}
	return env
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func hasNS(s *specs.Spec, typ specs.LinuxNamespaceType) bool {
	for _, n := range s.Linux.Namespaces {
		if n.Type == typ {
			return true
		}
	}
	return false
}

// TestEtcFiles: where the container's /etc files go. Into its rootfs as
// new files of its root's, never through what the image put there (a FIFO
// would block the daemon; a symlink must not lead out); bind-mounted from
// the container's directory when a mount covers /etc; not at all where
// the user mounts one of them. WriteEtcFile finds them again.
func TestEtcFiles(t *testing.T) {
	testutil.RequiresRoot(t)
	const base = 200000
	outside := t.TempDir()
	hostile := func(t *testing.T) string {
		root := t.TempDir()
		os.Mkdir(filepath.Join(root, "etc"), 0o755)
		if err := unix.Mkfifo(filepath.Join(root, "etc/hosts"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Symlink(filepath.Join(outside, "hostname"), filepath.Join(root, "etc/hostname"))
		os.Symlink("/"+outside, filepath.Join(root, "etc/resolv.conf"))
		return root
	}
	for _, tc := range []struct {
		name   string
		user   []specs.Mount
		rootfs bool
		// where each file is: "rootfs", "dir" (bound from the container's
		// directory) or "" (neither: the user's mount).
		want map[string]string
	}{
		{"into the rootfs", nil, true, map[string]string{"hostname": "rootfs", "hosts": "rootfs", "resolv.conf": "rootfs"}},
		{"no rootfs", nil, false, map[string]string{"hostname": "dir", "hosts": "dir", "resolv.conf": "dir"}},
		{"a volume at /etc", []specs.Mount{{Destination: "/etc/", Type: "bind", Source: "/x"}}, true,
			map[string]string{"hostname": "dir", "hosts": "dir", "resolv.conf": "dir"}},
		{"the user's hosts", []specs.Mount{{Destination: "/etc/hosts", Type: "bind", Source: "/x"}}, true,
			map[string]string{"hostname": "rootfs", "hosts": "", "resolv.conf": "rootfs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &Input{ID: "0123456789abcdef", Config: &types.Config{}, HostConfig: &types.HostConfig{}, ContainerDir: t.TempDir(), UsernsBase: base}
			if tc.rootfs {
				in.Rootfs = hostile(t)
			}
			ms, err := etcFiles(in, in.HostConfig, tc.user)
			if err != nil {
				t.Fatal(err)
			}
			s := &specs.Spec{Root: &specs.Root{Path: in.Rootfs}, Mounts: ms}
			for f, where := range tc.want {
				if err := WriteEtcFiles(s, in.ContainerDir, map[string][]byte{f: []byte("rewritten " + f + "\n")}, base); err != nil {
					t.Fatal(err)
				}
				inDir, bound := filepath.Join(in.ContainerDir, f), slices.ContainsFunc(ms, func(m specs.Mount) bool { return m.Source == filepath.Join(in.ContainerDir, f) })
				var p string
				switch where {
				case "rootfs":
					p = filepath.Join(in.Rootfs, "etc", f)
				case "dir":
					p = inDir
				}
				if bound != (where == "dir") {
					t.Errorf("%s: bound %v, want it %s", f, bound, where)
				}
				if p == "" {
					if _, err := os.Lstat(inDir); err == nil {
						t.Errorf("%s written under the user's mount", f)
					}
					continue
				}
				var st unix.Stat_t
				if err := unix.Lstat(p, &st); err != nil {
					t.Fatal(err)
				}
				if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != base || st.Gid != base {
					t.Errorf("%s: mode %o owner %d:%d, want a regular file of %d's", p, st.Mode, st.Uid, st.Gid, base)
				}
				if b, _ := os.ReadFile(p); string(b) != "rewritten "+f+"\n" {
					t.Errorf("%s: %q", p, b)
				}
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Errorf("wrote outside the rootfs: %v", ents)
			}
		})
	}
}

// TestSeccompCache: a cached default profile is the one built for the
// same capabilities, and a capability that opens syscalls gets its own.
func TestSeccompCache(t *testing.T) {
	cache := &SeccompCache{}
	gen := func(c *SeccompCache, capAdd ...string) *specs.LinuxSeccomp {
		t.Helper()
		in := &Input{ID: "x", Config: &types.Config{Cmd: []string{"x"}}, HostConfig: &types.HostConfig{CapAdd: capAdd}}
		s, err := Generate(in, &Defaults{VolumesDir: t.TempDir(), Seccomp: c})
		if err != nil {
			t.Fatal(err)
		}
		return s.Linux.Seccomp
	}
	names := func(p *specs.LinuxSeccomp) string { b, _ := json.Marshal(p); return string(b) }
	for _, capAdd := range [][]string{nil, {"SYS_ADMIN"}, nil, {"SYS_ADMIN"}} {
		if got, want := names(gen(cache, capAdd...)), names(gen(nil, capAdd...)); got != want {
			t.Errorf("cap-add %v: cached profile differs from a fresh one", capAdd)
		}
	}
	if names(gen(cache)) == names(gen(cache, "SYS_ADMIN")) {
		t.Error("CAP_SYS_ADMIN got the profile of the default capabilities")
	}
	if len(cache.profiles) != 2 {
		t.Errorf("%d profiles cached, want 2", len(cache.profiles))
	}
}

// TestResolveUserHostileFiles: an image's /etc/passwd or /etc/group that is
// not a regular file is never opened (a FIFO would block the daemon): the
// user is not found.
func TestResolveUserHostileFiles(t *testing.T) {
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	for _, f := range []string{"etc/passwd", "etc/group"} {
		if err := unix.Mkfifo(filepath.Join(rootfs, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, user := range []string{"www", "0:staff"} {
		done := make(chan error, 1)
		go func() { _, err := ResolveUser(rootfs, user); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("user %q with FIFOs for passwd and group: %v, want not found", user, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("user %q: the lookup blocked on the image's FIFO", user)
		}
	}
}
