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

// Each case builds a hostile image (or a hostile step between Setup and
// Pivot, standing for a createContainer hook or a racing container sharing
// a volume) and says how the container must end up: either a clear error
// naming the refusal, or mounts that landed inside the rootfs.
func TestHostileRootfs(t *testing.T) {
	testutil.RequiresRoot(t)
	hostMarker := filepath.Join(t.TempDir(), "host-marker")
	tests := []struct {
		name    string
		image   func(t *testing.T, root string) // makes the hostile image
		mounts  []specs.Mount                   // appended to the runc spec
		job     string
		probes  []string
		wantErr string // substring of the child's error
		check   func(t *testing.T, rep report)
	}{
		{
			// CVE-2021-30465: a symlink to an absolute host path.
			name:   "symlink to /etc",
			image:  func(t *testing.T, root string) { symlink(t, "/etc", root, "evil") },
			mounts: []specs.Mount{{Destination: "/evil/x", Type: "tmpfs", Source: "tmpfs"}},
			check: func(t *testing.T, rep report) {
				if _, ok := mountAt(rep, "/etc/x"); !ok {
					t.Errorf("tmpfs not at the container's /etc/x: %+v", rep.Mounts)
				}
				if _, err := os.Stat("/etc/x"); err == nil {
					t.Errorf("the host's /etc/x was created")
					os.Remove("/etc/x")
				}
			},
		},
		{
			// CVE-2021-30465: ".." out of the rootfs towards the host.
			name:   "symlink with dotdot",
			image:  func(t *testing.T, root string) { symlink(t, "../../../../../../../../tmp", root, "up") },
			mounts: []specs.Mount{{Destination: "/up/" + escapeMarker, Type: "tmpfs", Source: "tmpfs"}},
			check: func(t *testing.T, rep report) {
				if _, ok := mountAt(rep, "/tmp/"+escapeMarker); !ok {
					t.Errorf("tmpfs not at the container's /tmp: %+v", rep.Mounts)
				}
				if _, err := os.Stat("/tmp/" + escapeMarker); err == nil {
					t.Errorf("the host's /tmp/%s was created", escapeMarker)
					os.Remove("/tmp/" + escapeMarker)
				}
			},
		},
		{
			// The same towards a directory the image lacks: refused, not
			// created on the host.
			name: "dangling dotdot directory",
			image: func(t *testing.T, root string) {
				symlink(t, "../../../../../../../../"+filepath.Dir(hostMarker), root, "up")
			},
			mounts:  []specs.Mount{{Destination: "/up/host-marker", Type: "tmpfs", Source: "tmpfs"}},
			wantErr: "a symlink not resolving inside the rootfs",
		},
		{
			// A bind target that is a symlink to a host file: the bind
			// lands on the rootfs's file of that name.
			name: "file bind target symlink",
			image: func(t *testing.T, root string) {
				writeFile(t, filepath.Join(root, "etc/passwd"), "image passwd\n")
				symlink(t, "/etc/passwd", root, "etc/hostname")
			},
			mounts: []specs.Mount{{Destination: "/etc/hostname", Type: "bind", Source: "hostname", Options: []string{"ro"}}},
			probes: []string{"/etc/passwd"},
			check: func(t *testing.T, rep report) {
				if pr := rep.Probes["/etc/passwd"]; pr.Read != "bundle hostname\n" || pr.WriteErr != "EROFS" {
					t.Errorf("bind did not land read-only on the image's /etc/passwd: %+v", pr)
				}
			},
		},
		{
			// A bind source inside the rootfs is the image's: a symlink
			// there must not bind the host's file.
			name: "bind source symlink inside rootfs",
			image: func(t *testing.T, root string) {
				writeFile(t, filepath.Join(root, "etc/passwd"), "image passwd\n")
				symlink(t, "/etc/passwd", root, "srclink")
			},
			mounts: []specs.Mount{{Destination: "/mnt/passwd", Type: "bind", Source: "rootfs/srclink"}},
			probes: []string{"/mnt/passwd"},
			check: func(t *testing.T, rep report) {
				if pr := rep.Probes["/mnt/passwd"]; pr.Read != "image passwd\n" {
					t.Errorf("bind source resolved outside the rootfs: %+v", pr)
				}
			},
		},
		{
			name:    "dangling symlink target",
			image:   func(t *testing.T, root string) { symlink(t, "/nonexistent/file", root, "etc/dangling") },
			mounts:  []specs.Mount{{Destination: "/etc/dangling", Type: "bind", Source: "hostname"}},
			wantErr: "create /etc/dangling (in rootfs): a symlink not resolving inside the rootfs",
		},
		{
			// CVE-2019-16884: /proc of the image a symlink to a directory
			// the container controls.
			name: "proc destination symlink",
			image: func(t *testing.T, root string) {
				os.Remove(filepath.Join(root, "proc"))
				os.MkdirAll(filepath.Join(root, "tmp/fakeproc"), 0o755)
				symlink(t, "/tmp/fakeproc", root, "proc")
			},
			wantErr: "mount /proc (proc): destination /proc goes through a symlink",
		},
		{
			name: "sys destination symlink",
			image: func(t *testing.T, root string) {
				os.Remove(filepath.Join(root, "sys"))
				symlink(t, "/tmp", root, "sys")
			},
			wantErr: "mount /sys (sysfs): destination /sys goes through a symlink",
		},
		{
			name: "missing /proc and /sys are created",
			image: func(t *testing.T, root string) {
				os.Remove(filepath.Join(root, "proc"))
				os.Remove(filepath.Join(root, "sys"))
			},
			check: func(t *testing.T, rep report) {
				for _, p := range []string{"/proc", "/sys"} {
					if _, ok := mountAt(rep, p); !ok {
						t.Errorf("no mount at %s", p)
					}
				}
			},
		},
		{
			// A mount redirected into procfs could hide or replace a
			// kernel knob (/proc/sys/kernel/core_pattern).
			name:    "target redirected into procfs",
			image:   func(t *testing.T, root string) { symlink(t, "/proc/sys/kernel", root, "data") },
			mounts:  []specs.Mount{{Destination: "/data/core_pattern", Type: "bind", Source: "hostname"}},
			wantErr: "resolves inside procfs",
		},
		{
			name:   "lxcfs-style mount over /proc/meminfo allowed",
			mounts: []specs.Mount{{Destination: "/proc/meminfo", Type: "bind", Source: "hostname"}},
			probes: []string{"/proc/meminfo"},
			check: func(t *testing.T, rep report) {
				if pr := rep.Probes["/proc/meminfo"]; pr.Read != "bundle hostname\n" {
					t.Errorf("/proc/meminfo: %+v", pr)
				}
			},
		},
		{
			// CVE-2025-31133: /dev/null swapped for a symlink before masking.
			name:    "dev null symlink",
			job:     "devnull-symlink",
			wantErr: "refusing to mask with /dev/null",
		},
		{
			name:    "dev null regular file",
			job:     "devnull-file",
			wantErr: "refusing to mask with /dev/null: not the null device",
		},
		{
			// CVE-2025-52565: /dev/console a symlink into procfs.
			name: "console symlink",
			job:  "console-symlink+console",
			check: func(t *testing.T, rep report) {
				if !strings.Contains(rep.Console, "/dev/console is not a file or a node") {
					t.Errorf("MountConsole over a symlink: %q", rep.Console)
				}
				for _, m := range rep.Mounts {
					if strings.HasPrefix(m.Point, "/proc/sys/kernel") {
						t.Errorf("something mounted in procfs: %+v", m)
					}
				}
			},
		},
		{
			name:   "console",
			job:    "plain+console",
			probes: []string{"/dev/console"},
			check: func(t *testing.T, rep report) {
				if rep.Console != "" {
					t.Errorf("MountConsole: %s", rep.Console)
				}
				if m, ok := mountAt(rep, "/dev/console"); !ok || m.FSType != "devpts" {
					t.Errorf("/dev/console not a devpts bind: %+v", rep.Mounts)
				}
			},
		},
		{
			// A device path in linux.devices through a symlink out of /dev.
			name:  "device through symlink",
			image: func(t *testing.T, root string) { symlink(t, "/etc", root, "dev-link") },
			mounts: []specs.Mount{
				{Destination: "/dev-link/sub", Type: "tmpfs", Source: "tmpfs"},
			},
			check: func(t *testing.T, rep report) {
				if _, ok := mountAt(rep, "/etc/sub"); !ok {
					t.Errorf("tmpfs not inside the rootfs: %+v", rep.Mounts)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testutil.CheckNoNewMounts(t)
			bundle := newBundle(t)
			writeFile(t, filepath.Join(bundle, "hostname"), "bundle hostname\n")
			if tc.image != nil {
				tc.image(t, filepath.Join(bundle, "rootfs"))
			}
			spec := runcSpec()
			spec.Mounts = append(spec.Mounts, tc.mounts...)
			job := tc.job
			if job == "" {
				job = "plain"
			}
			res := runInChild(t, job, spec, bundle, tc.probes)
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

func symlink(t *testing.T, target, root, name string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes a test file; t may be nil in spec edit functions, where
// a failure panics.
func writeFile(t *testing.T, path, content string) {
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		err = os.WriteFile(path, []byte(content), 0o644)
	}
	if err != nil && t != nil {
		t.Fatal(err)
	} else if err != nil {
		panic(err)
	}
}

var _ = unix.S_IFCHR

const escapeMarker = "estiba-rootfs-escape-marker"
