package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func u32(v uint32) *uint32 { return &v }

// TestFeatures runs the runc spec plus one feature per case and checks it
// from inside the container.
func TestFeatures(t *testing.T) {
	testutil.RequiresRoot(t)
	tests := []struct {
		name    string
		edit    func(spec *specs.Spec, bundle string)
		env     childEnv
		host    func(t *testing.T, bundle string) // prepares the test's namespace
		job     string
		probes  []string
		wantErr string
		check   func(t *testing.T, rep report)
	}{
		{
			name: "read-only bind of a directory",
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "vol", Options: []string{"ro", "nosuid", "nodev"}})
			},
			probes: []string{"/data", "/data/file"},
			check: func(t *testing.T, rep report) {
				m, _ := mountAt(rep, "/data")
				if !hasOpt(m.Opts, "ro") || !hasOpt(m.Opts, "nosuid") || !hasOpt(m.Opts, "nodev") {
					t.Errorf("/data options %q", m.Opts)
				}
				if pr := rep.Probes["/data"]; pr.CreateErr != "EROFS" {
					t.Errorf("/data writable: %+v", pr)
				}
				if pr := rep.Probes["/data/file"]; pr.Read != "volume file\n" {
					t.Errorf("/data/file: %+v", pr)
				}
			},
		},
		{
			name: "bind creates missing target dirs and file",
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts,
					specs.Mount{Destination: "/new/deep/dir", Type: "bind", Source: "vol"},
					specs.Mount{Destination: "/new/other/file", Type: "bind", Source: "vol/file"})
			},
			probes: []string{"/new/deep/dir/file", "/new/other/file"},
			check: func(t *testing.T, rep report) {
				for _, p := range []string{"/new/deep/dir/file", "/new/other/file"} {
					if pr := rep.Probes[p]; pr.Read != "volume file\n" || pr.WriteErr != "" {
						t.Errorf("%s: %+v", p, pr)
					}
				}
			},
		},
		{
			name: "ro rbind leaves submounts writable",
			job:  "submount",
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "vol", Options: []string{"rbind", "ro"}})
			},
			probes: []string{"/data", "/data/sub"},
			check: func(t *testing.T, rep report) {
				if pr := rep.Probes["/data"]; pr.CreateErr != "EROFS" {
					t.Errorf("/data writable: %+v", pr)
				}
				if pr := rep.Probes["/data/sub"]; pr.FSMagic != unix.TMPFS_MAGIC || pr.CreateErr != "" {
					t.Errorf("/data/sub: %+v", pr)
				}
			},
		},
		{
			name: "rro makes submounts read-only",
			job:  "submount",
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "vol", Options: []string{"rbind", "rro"}})
			},
			probes: []string{"/data", "/data/sub"},
			check: func(t *testing.T, rep report) {
				for _, p := range []string{"/data", "/data/sub"} {
					if pr := rep.Probes[p]; pr.CreateErr != "EROFS" {
						t.Errorf("%s writable: %+v", p, pr)
					}
				}
			},
		},
		{
			name: "bind without rbind drops submounts",
			job:  "submount",
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "vol"})
			},
			probes: []string{"/data/sub"},
			check: func(t *testing.T, rep report) {
				if pr := rep.Probes["/data/sub"]; pr.FSMagic == unix.TMPFS_MAGIC {
					t.Errorf("submount visible through a non-recursive bind: %+v", pr)
				}
			},
		},
		{
			name: "nosymfollow and noexec",
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "vol", Options: []string{"nosymfollow", "noexec", "noatime"}})
			},
			check: func(t *testing.T, rep report) {
				m, _ := mountAt(rep, "/data")
				for _, o := range []string{"nosymfollow", "noexec", "noatime"} {
					if !hasOpt(m.Opts, o) {
						t.Errorf("/data options %q lack %s", m.Opts, o)
					}
				}
			},
		},
		{
			name: "propagation options",
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts,
					specs.Mount{Destination: "/shared", Type: "tmpfs", Source: "tmpfs", Options: []string{"rshared"}},
					specs.Mount{Destination: "/unbindable", Type: "tmpfs", Source: "tmpfs", Options: []string{"unbindable"}})
			},
			check: func(t *testing.T, rep report) {
				if m, _ := mountAt(rep, "/shared"); !strings.Contains(m.Optional, "shared:") {
					t.Errorf("/shared not shared: %+v", m)
				}
				if m, _ := mountAt(rep, "/unbindable"); !strings.Contains(m.Optional, "unbindable") {
					t.Errorf("/unbindable: %+v", m)
				}
			},
		},
		{
			name: "tmpfs options",
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs",
					Options: []string{"mode=0700", "size=1m", "uid=1000", "gid=1000", "nosuid"}})
			},
			probes: []string{"/run"},
			check: func(t *testing.T, rep report) {
				m, _ := mountAt(rep, "/run")
				for _, o := range []string{"size=1024k", "mode=700", "uid=1000", "gid=1000"} {
					if !hasOpt(m.SuperOpts, o) {
						t.Errorf("/run superblock options %q lack %s", m.SuperOpts, o)
					}
				}
				if pr := rep.Probes["/run"]; pr.Mode != unix.S_IFDIR|0o700 || pr.UID != 1000 {
					t.Errorf("/run: %+v", pr)
				}
			},
		},
		{
			name: "tmpcopyup",
			edit: func(s *specs.Spec, b string) {
				root := filepath.Join(b, "rootfs")
				writeFile(nil, filepath.Join(root, "var/lib/app/conf"), "image conf\n")
				writeFile(nil, filepath.Join(root, "var/lib/app/sub/deep"), "deep\n")
				if err := os.Symlink("/etc/passwd", filepath.Join(root, "var/lib/app/link")); err != nil {
					panic(err)
				}
				if err := os.Chown(filepath.Join(root, "var/lib/app/conf"), 1000, 1001); err != nil {
					panic(err)
				}
				if err := os.Chmod(filepath.Join(root, "var/lib/app/conf"), 0o640); err != nil {
					panic(err)
				}
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/var/lib/app", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "mode=755"}})
			},
			probes: []string{"/var/lib/app", "/var/lib/app/conf", "/var/lib/app/sub/deep", "/var/lib/app/link"},
			check: func(t *testing.T, rep report) {
				if m, _ := mountAt(rep, "/var/lib/app"); m.FSType != "tmpfs" {
					t.Errorf("/var/lib/app: %+v", m)
				}
				if pr := rep.Probes["/var/lib/app/conf"]; pr.Read != "image conf\n" || pr.UID != 1000 || pr.GID != 1001 || pr.Mode != unix.S_IFREG|0o640 {
					t.Errorf("conf: %+v", pr)
				}
				if pr := rep.Probes["/var/lib/app/sub/deep"]; pr.Read != "deep\n" || pr.FSMagic != unix.TMPFS_MAGIC {
					t.Errorf("sub/deep: %+v", pr)
				}
				if pr := rep.Probes["/var/lib/app/link"]; pr.LinkTarget != "/etc/passwd" {
					t.Errorf("link: %+v", pr)
				}
				if pr := rep.Probes["/var/lib/app"]; pr.CreateErr != "" || pr.Mode != unix.S_IFDIR|0o755 {
					t.Errorf("/var/lib/app: %+v", pr)
				}
			},
		},
		{
			name: "bad tmpfs option gets the kernel's message",
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=lots"}})
			},
			wantErr: `option "size=lots"`,
		},
		{
			name: "linux.devices",
			edit: func(s *specs.Spec, b string) {
				s.Linux.Devices = []specs.LinuxDevice{
					{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: fileMode(0o600), UID: u32(1000), GID: u32(1001)},
					{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200, FileMode: fileMode(0o666)},
					{Path: "/dev/loop-test", Type: "b", Major: 7, Minor: 0, FileMode: fileMode(0o660)},
					{Path: "/dev/fifo", Type: "p", FileMode: fileMode(0o620)},
				}
			},
			probes: []string{"/dev/fuse", "/dev/net/tun", "/dev/loop-test", "/dev/fifo"},
			check: func(t *testing.T, rep report) {
				want := map[string]probe{
					"/dev/fuse":      {Mode: unix.S_IFCHR | 0o600, Rdev: unix.Mkdev(10, 229), UID: 1000, GID: 1001},
					"/dev/net/tun":   {Mode: unix.S_IFCHR | 0o666, Rdev: unix.Mkdev(10, 200)},
					"/dev/loop-test": {Mode: unix.S_IFBLK | 0o660, Rdev: unix.Mkdev(7, 0)},
					"/dev/fifo":      {Mode: unix.S_IFIFO | 0o620},
				}
				for p, w := range want {
					got := rep.Probes[p]
					if got.Mode != w.Mode || got.Rdev != w.Rdev || got.UID != w.UID || got.GID != w.GID {
						t.Errorf("%s: %+v, want %+v", p, got, w)
					}
				}
			},
		},
		{
			name:    "bad device type",
			edit:    func(s *specs.Spec, b string) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "z"}} },
			wantErr: `unknown device type "z"`,
		},
		{
			name:   "read-only root",
			edit:   func(s *specs.Spec, b string) { s.Root.Readonly = true },
			probes: []string{"/tmp", "/dev/shm"},
			check: func(t *testing.T, rep report) {
				if m, _ := mountAt(rep, "/"); !hasOpt(m.Opts, "ro") {
					t.Errorf("/ not read-only: %+v", m)
				}
				if pr := rep.Probes["/tmp"]; pr.CreateErr != "EROFS" {
					t.Errorf("/tmp writable on a read-only root: %+v", pr)
				}
				if pr := rep.Probes["/dev/shm"]; pr.CreateErr != "" {
					t.Errorf("/dev/shm not writable: %+v", pr)
				}
			},
		},
		{
			name: "no /dev mount gets a tmpfs",
			edit: func(s *specs.Spec, b string) {
				var ms []specs.Mount
				for _, m := range s.Mounts {
					if m.Destination != "/dev" {
						ms = append(ms, m)
					}
				}
				s.Mounts = ms
			},
			probes: []string{"/dev/null"},
			check: func(t *testing.T, rep report) {
				if m, ok := mountAt(rep, "/dev"); !ok || m.FSType != "tmpfs" {
					t.Errorf("/dev: %+v", m)
				}
				if pr := rep.Probes["/dev/null"]; pr.Rdev != unix.Mkdev(1, 3) {
					t.Errorf("/dev/null: %+v", pr)
				}
			},
		},
		{
			name: "rootfsPropagation rshared",
			edit: func(s *specs.Spec, b string) { s.Linux.RootfsPropagation = "rshared" },
			check: func(t *testing.T, rep report) {
				if m, _ := mountAt(rep, "/"); !strings.Contains(m.Optional, "shared:") {
					t.Errorf("/ not shared: %+v", m)
				}
				noHostMounts(t, rep)
			},
		},
		{
			name: "rootfsPropagation private",
			edit: func(s *specs.Spec, b string) { s.Linux.RootfsPropagation = "private" },
			check: func(t *testing.T, rep report) {
				if m, _ := mountAt(rep, "/"); m.Optional != "" {
					t.Errorf("/ not private: %+v", m)
				}
			},
		},
		{
			name: "rootfsPropagation runbindable",
			edit: func(s *specs.Spec, b string) { s.Linux.RootfsPropagation = "runbindable" },
			check: func(t *testing.T, rep report) {
				if m, _ := mountAt(rep, "/"); !strings.Contains(m.Optional, "unbindable") {
					t.Errorf("/ not unbindable: %+v", m)
				}
			},
		},
		{
			name: "rootfsPropagation slave",
			edit: func(s *specs.Spec, b string) { s.Linux.RootfsPropagation = "slave" },
		},
		{
			name: "mount over the root",
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/", Type: "tmpfs"})
			},
			wantErr: "destination is the root itself",
		},
		{
			name:    "bad rootfsPropagation",
			edit:    func(s *specs.Spec, b string) { s.Linux.RootfsPropagation = "ro" },
			wantErr: `linux.rootfsPropagation "ro": not a propagation type`,
		},
		{
			name:   "no pivot",
			env:    childEnv{opts: Options{NoPivot: true}},
			probes: []string{"/proc/sys/kernel/hostname", "/bin/busybox"},
			check: func(t *testing.T, rep report) {
				if pr := rep.Probes["/proc/sys/kernel/hostname"]; pr.WriteErr != "EROFS" {
					t.Errorf("/proc/sys writable: %+v", pr)
				}
				if pr := rep.Probes["/bin/busybox"]; !pr.Exists {
					t.Errorf("not in the rootfs")
				}
				noHostMounts(t, rep)
			},
		},
		{
			name:   "user namespace",
			env:    childEnv{userns: true, opts: Options{InUserNS: true}},
			probes: []string{"/dev/null", "/dev/tty", "/sys/fs/cgroup/memory", "/proc/sys/kernel/hostname"},
			check: func(t *testing.T, rep report) {
				for p, rdev := range map[string]uint64{"/dev/null": unix.Mkdev(1, 3), "/dev/tty": unix.Mkdev(5, 0)} {
					if pr := rep.Probes[p]; pr.Mode&unix.S_IFMT != unix.S_IFCHR || pr.Rdev != rdev {
						t.Errorf("%s: %+v", p, pr)
					}
					if m, ok := mountAt(rep, p); !ok || m.FSType != "devtmpfs" {
						t.Errorf("%s not a bind of the host's node: %+v", p, m)
					}
				}
				if pr := rep.Probes["/sys/fs/cgroup/memory"]; pr.FSMagic != unix.CGROUP_SUPER_MAGIC {
					t.Errorf("/sys/fs/cgroup/memory: %+v", pr)
				}
				if pr := rep.Probes["/proc/sys/kernel/hostname"]; pr.WriteErr != "EROFS" {
					t.Errorf("/proc/sys writable: %+v", pr)
				}
				noHostMounts(t, rep)
			},
		},
		{
			// A user namespace without its own network namespace cannot
			// mount sysfs: the host's /sys is bound instead, read-only.
			name:   "user namespace without netns",
			env:    childEnv{userns: true, noNetNS: true, opts: Options{InUserNS: true}},
			probes: []string{"/sys/kernel", "/sys/fs/cgroup/memory"},
			check: func(t *testing.T, rep report) {
				if m, ok := mountAt(rep, "/sys"); !ok || m.FSType != "sysfs" || !hasOpt(m.Opts, "ro") {
					t.Errorf("/sys: %+v", m)
				}
				if pr := rep.Probes["/sys/kernel"]; pr.FSMagic != unix.SYSFS_MAGIC || pr.CreateErr != "EROFS" {
					t.Errorf("/sys/kernel: %+v", pr)
				}
				if pr := rep.Probes["/sys/fs/cgroup/memory"]; pr.FSMagic != unix.CGROUP_SUPER_MAGIC {
					t.Errorf("/sys/fs/cgroup/memory: %+v", pr)
				}
				noHostMounts(t, rep)
			},
		},
		{
			name: "cgroup namespace",
			env:  childEnv{cgroupNS: true},
			edit: func(s *specs.Spec, b string) {
				s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.CgroupNamespace}}
			},
			probes: []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"},
			check:  func(t *testing.T, rep report) { checkCgroupMounts(t, rep, true) },
		},
		{
			name:  "cgroup without namespace",
			check: func(t *testing.T, rep report) { checkCgroupMounts(t, rep, false) },
		},
		{
			// The source is a read-only mount of the test's namespace, so
			// in the child's user namespace its ro flag is locked.
			name: "user namespace cannot clear a locked flag",
			env:  childEnv{userns: true, opts: Options{InUserNS: true}},
			host: roBindVol,
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "vol", Options: []string{"rw"}})
			},
			wantErr: "locked and cannot be cleared",
		},
		{
			name: "user namespace keeps a locked flag",
			env:  childEnv{userns: true, opts: Options{InUserNS: true}},
			host: roBindVol,
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "vol", Options: []string{"nosuid", "nodev"}})
			},
			probes: []string{"/data"},
			check: func(t *testing.T, rep report) {
				if m, _ := mountAt(rep, "/data"); !hasOpt(m.Opts, "ro") || !hasOpt(m.Opts, "nosuid") {
					t.Errorf("/data: %+v", m)
				}
			},
		},
		{
			name: "user namespace refuses a bind hiding locked submounts",
			env:  childEnv{userns: true, opts: Options{InUserNS: true}},
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/sys"})
			},
			wantErr: "use rbind",
		},
		{
			name: "idmap with explicit mappings",
			env:  childEnv{idmapper: true, noPidNS: true},
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "vol", Options: []string{"idmap"},
					UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
					GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}})
			},
			probes: []string{"/data/file"},
			check: func(t *testing.T, rep report) {
				if m, _ := mountAt(rep, "/data"); !hasOpt(m.Opts, "idmapped") {
					t.Errorf("/data not idmapped: %+v", m)
				}
				// On disk the file is 0:0; the mount maps id 0 to 1000.
				if pr := rep.Probes["/data/file"]; pr.UID != 1000 || pr.GID != 1000 {
					t.Errorf("/data/file owned by %d:%d, want 1000:1000 through the idmap", pr.UID, pr.GID)
				}
			},
		},
		{
			name: "idmap mappings without a maker",
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "vol", Options: []string{"idmap"},
					UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}})
			},
			wantErr: "Options.UserNS",
		},
		{
			name: "idmap without a user namespace",
			edit: func(s *specs.Spec, b string) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "vol", Options: []string{"idmap"}})
			},
			wantErr: "needs a container user namespace",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testutil.CheckNoNewMounts(t)
			bundle := newBundle(t)
			writeFile(t, filepath.Join(bundle, "vol/file"), "volume file\n")
			if err := os.Mkdir(filepath.Join(bundle, "vol/sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			spec := runcSpec()
			if tc.edit != nil {
				tc.edit(spec, bundle)
			}
			if tc.host != nil {
				tc.host(t, bundle)
			}
			job := tc.job
			if job == "" {
				job = "plain"
			}
			res := runInChildEnv(t, job, spec, bundle, tc.probes, tc.env)
			if tc.wantErr != "" {
				if res.err == nil || !strings.Contains(res.stderr, tc.wantErr) {
					t.Fatalf("want error %q, got %v: %s", tc.wantErr, res.err, res.stderr)
				}
				return
			}
			if res.err != nil {
				t.Fatalf("child: %v\n%s", res.err, res.stderr)
			}
			if tc.check != nil {
				tc.check(t, res.rep)
			}
		})
	}
}

// noHostMounts fails if a mount point outside what the runc spec and the
// tests make is visible in the container.
func noHostMounts(t *testing.T, rep report) {
	t.Helper()
	for _, m := range rep.Mounts {
		switch {
		case m.Point == "/", strings.HasPrefix(m.Point, "/proc"), strings.HasPrefix(m.Point, "/dev"), strings.HasPrefix(m.Point, "/sys"):
		default:
			t.Errorf("unexpected mount in the container: %+v", m)
		}
	}
}

// selfHierarchies is the test process's /proc/self/cgroup.
func selfHierarchies(t *testing.T) []hierarchy {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	hs, err := parseCgroupFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// checkCgroupMounts checks each hierarchy of the test process is mounted
// read-only at /sys/fs/cgroup/<dir>, rooted at the test process's own cgroup
// (a child's cgroup namespace is rooted there too, so its mounts show "/").
func checkCgroupMounts(t *testing.T, rep report, inNS bool) {
	t.Helper()
	for _, h := range selfHierarchies(t) {
		p := "/sys/fs/cgroup/" + h.dir()
		m, ok := mountAt(rep, p)
		if !ok {
			t.Errorf("no mount at %s", p)
			continue
		}
		want := h.path
		if inNS {
			want = "/"
		}
		if m.Root != want || !hasOpt(m.Opts, "ro") || !strings.HasPrefix(m.FSType, "cgroup") {
			t.Errorf("%s: %+v, want a read-only cgroup mount of %s", p, m, want)
		}
	}
}

// roBindVol makes the bundle's vol a read-only mount in the test's mount
// namespace, until the test ends.
func roBindVol(t *testing.T, bundle string) {
	t.Helper()
	vol := filepath.Join(bundle, "vol")
	if err := unix.Mount(vol, vol, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(vol, unix.MNT_DETACH); err != nil {
			t.Error(err)
		}
	})
	if err := unix.Mount("", vol, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
}

// TestPreparedIDMapInUserNS: a container with a user namespace gets an
// idmapped mount the runtime prepared outside it (the init could not: the
// file system belongs to the host's user namespace).
func TestPreparedIDMapInUserNS(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	bundle := newBundle(t)
	writeFile(t, filepath.Join(bundle, "vol/file"), "volume file\n")
	spec := runcSpec()
	m := specs.Mount{Destination: "/data", Type: "bind", Source: "vol", Options: []string{"rbind", "idmap"},
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
		GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}}
	spec.Mounts = append(spec.Mounts, m)
	ns, err := NewUserNS(m.UIDMappings, m.GIDMappings)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	src, err := PrepareMount(m, bundle, ns)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	env := childEnv{userns: true, opts: Options{InUserNS: true}, sources: map[int]*os.File{len(spec.Mounts) - 1: src}}
	res := runInChildEnv(t, "plain", spec, bundle, []string{"/data/file"}, env)
	if res.err != nil {
		t.Fatalf("child: %v\n%s", res.err, res.stderr)
	}
	if m, _ := mountAt(res.rep, "/data"); !hasOpt(m.Opts, "idmapped") {
		t.Errorf("/data not idmapped: %+v", m)
	}
	// On disk 0:0; the mount maps 0 to 1000, which the child's identity
	// user namespace shows as 1000.
	if pr := res.rep.Probes["/data/file"]; pr.UID != 1000 || pr.GID != 1000 || pr.Read != "volume file\n" {
		t.Errorf("/data/file: %+v", pr)
	}
}
