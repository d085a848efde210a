package security

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/estiba/estiba/internal/testutil"
)

// hostWatch records a host directory's tree and the host's mount points, to
// prove later that a container changed neither.
type hostWatch struct {
	dir    string
	tree   []string
	mounts map[string]bool
}

func watchHost(t *testing.T, dir string) *hostWatch {
	return &hostWatch{dir: dir, tree: listTree(t, dir), mounts: testutil.Mounts(t)}
}

// check fails t if the directory's tree changed or a host mount appeared
// under it, in /etc, or at /.
func (w *hostWatch) check(t *testing.T, what string) {
	t.Helper()
	if after := listTree(t, w.dir); !slices.Equal(after, w.tree) {
		t.Errorf("%s: host directory %s changed: %v -> %v", what, w.dir, w.tree, after)
	}
	for m := range testutil.Mounts(t) {
		if !w.mounts[m] && (strings.HasPrefix(m, w.dir) || strings.HasPrefix(m, "/etc") || m == "/") {
			t.Errorf("%s: host mount appeared at %s", what, m)
		}
	}
}

// TestSymlinkMountTargets (CVE-2021-30465): mount destinations whose path
// runs through symlinks in the rootfs must resolve inside the rootfs. The
// container runs while the host is checked: no file created in the host
// directory the symlinks aim at, no host mount added, and inside the
// container the mount is where the in-root resolution puts it.
func TestSymlinkMountTargets(t *testing.T) {
	for _, tc := range []struct {
		name, link, target, dest, want string
	}{
		// rootfs/escape -> ../../../../<host dir>: in-root it is /<host dir>.
		{name: "relative-climb", link: "escape", target: "../../../../../../../..{HOST}", dest: "/escape/x", want: "{HOST}/x"},
		{name: "absolute", link: "abs", target: "{HOST}", dest: "/abs/x", want: "{HOST}/x"},
		{name: "etc", link: "hostetc", target: "../../../../../../etc", dest: "/hostetc/qa", want: "/etc/qa"},
		{name: "root", link: "mnt", target: "/", dest: "/mnt/qa", want: "/qa"},
		{name: "dotdot-dest", dest: "/../../../../{HOST}/y", want: "{HOST}/y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := t.TempDir()
			sub := func(s string) string { return strings.ReplaceAll(s, "{HOST}", host) }
			e := newEnv(t, "sh", "-c", "cat /proc/self/mountinfo; echo inside > "+sub(tc.dest)+"/probe && echo WROTE")
			if tc.link != "" {
				_ = os.RemoveAll(filepath.Join(e.rootfs, tc.link))
				symlink(t, sub(tc.target), filepath.Join(e.rootfs, tc.link))
			}
			e.addTmpfs(sub(tc.dest))
			w := watchHost(t, host)
			etc := watchHost(t, "/etc/ssl")
			r, err := e.runContainer()
			w.check(t, "CVE-2021-30465")
			etc.check(t, "CVE-2021-30465")
			if _, err := os.Stat("/etc/qa"); err == nil {
				t.Errorf("CVE-2021-30465: /etc/qa created on the host")
				_ = os.RemoveAll("/etc/qa")
			}
			if err != nil {
				t.Logf("run refused (safe): %v: %s", err, strings.TrimSpace(r.stderr))
				return
			}
			if !strings.Contains(r.stdout, " "+sub(tc.want)+" ") {
				t.Errorf("tmpfs for %s not at in-root %s:\n%s", tc.dest, sub(tc.want), r.stdout)
			}
			if !strings.Contains(r.stdout, "WROTE") {
				t.Errorf("container could not write its tmpfs at %s:\n%s", tc.dest, r)
			}
		})
	}
}

// devSymlinkProbe tries, from inside, every route by which a /dev symlink
// or a redirected mount would let the container write a host procfs file,
// and reads the masked paths (they must read empty or fail).
const devSymlinkProbe = `
for f in /dev/null /dev/console /dev/ptmx /dev/pts/ptmx /proc/sys/kernel/core_pattern /proc/sys/kernel/domainname; do
  if { echo "|/estiba-qa-escape" >> $f; } 2>/dev/null; then echo "WROTE $f"; fi
done
for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/acpi /sys/firmware; do
  if [ -f $f ] && v=$(head -c 64 $f 2>/dev/null) && [ -n "$v" ]; then echo "READ $f: $v"; fi
  # Masking binds the real /dev/null (char 1:3): writable, reads empty.
  if [ -e $f ] && [ "$(stat -c '%F %t:%T' $f)" != "character special file 1:3" ] && { true >> $f; } 2>/dev/null; then echo "WRITABLE $f"; fi
done
ls -l /dev/null /dev/console /dev/ptmx 2>&1
true`

// TestDevSymlinks (CVE-2025-31133, CVE-2025-52565): the image's own /dev
// (no /dev tmpfs in the spec) carries /dev/null, /dev/console, /dev/ptmx
// and /dev/pts/ptmx as symlinks to host procfs files. The runtime uses
// /dev/null as the source of masked-path binds and binds over /dev/console
// and /dev/ptmx; following any of these symlinks would bind the procfs
// file writable into the container. Run must fail or the container must be
// unable to write the host's core_pattern, and masked paths stay masked.
func TestDevSymlinks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		links map[string]string
	}{
		{"null-core_pattern", map[string]string{"dev/null": "/proc/sys/kernel/core_pattern"}},
		{"null-relative", map[string]string{"dev/null": "../proc/sys/kernel/core_pattern"}},
		{"console-ptmx", map[string]string{"dev/console": "/proc/sys/kernel/core_pattern", "dev/ptmx": "/proc/sys/kernel/core_pattern"}},
		{"pts-ptmx", map[string]string{"dev/pts": "/proc/sys/kernel"}},
		{"dev-to-proc-sys", map[string]string{"dev": "/proc/sys/kernel"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hostProcFile(t, "/proc/sys/kernel/core_pattern")
			e := newEnv(t, "sh", "-c", devSymlinkProbe)
			e.withoutMount("/dev")
			for l, target := range tc.links {
				_ = os.RemoveAll(filepath.Join(e.rootfs, l))
				symlink(t, target, filepath.Join(e.rootfs, l))
			}
			r, err := e.runContainer()
			if err != nil {
				t.Logf("run refused (safe): %v: %s", err, strings.TrimSpace(r.stderr))
				return
			}
			t.Logf("probe:\n%s", r.stdout)
			for _, l := range strings.Split(r.stdout, "\n") {
				if strings.HasPrefix(l, "WROTE /proc") || strings.HasPrefix(l, "READ ") || strings.HasPrefix(l, "WRITABLE ") {
					t.Errorf("masked or read-only procfs path reachable: %s", l)
				}
			}
		})
	}
}

// TestProcWriteRedirect (CVE-2025-52881): the runtime writes procfs files
// for the container (sysctls, oom_score_adj) after the bundle's mounts are
// in place. A bind mount of another procfs file over /proc/sys/kernel/
// domainname, or a tmpfs over /proc/sys, must not redirect the runtime's
// sysctl write into the host's core_pattern or to a fake file: run fails
// or the write reaches the container's own UTS domainname.
func TestProcWriteRedirect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mounts []specs.Mount
		links  map[string]string // rootfs path -> symlink target
	}{
		// The image's /proc is a symlink: proc lands in-root at /tmp/p,
		// and /proc/sys/kernel/domainname must still be the real file.
		{name: "proc-symlink", links: map[string]string{"proc": "tmp/p"}},
		{name: "proc-symlink-to-host-proc", links: map[string]string{"proc": "../../../../../../proc"}},
		{name: "bind-core_pattern-over-domainname", mounts: []specs.Mount{{Destination: "/proc/sys/kernel/domainname", Type: "bind", Source: "/proc/sys/kernel/core_pattern", Options: []string{"bind", "rw"}}}},
		{name: "tmpfs-over-proc-sys", mounts: []specs.Mount{{Destination: "/proc/sys", Type: "tmpfs", Source: "tmpfs"}}},
		{name: "bind-core_pattern-over-oom_score_adj", mounts: []specs.Mount{{Destination: "/proc/self/oom_score_adj", Type: "bind", Source: "/proc/sys/kernel/core_pattern", Options: []string{"bind", "rw"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hostProcFile(t, "/proc/sys/kernel/core_pattern")
			// Only the runtime writes: the bundle's bind hands the file to
			// the container on purpose.
			e := newEnv(t, "sh", "-c", "cat /proc/sys/kernel/domainname")
			e.spec.Mounts = append(e.spec.Mounts, tc.mounts...)
			for l, target := range tc.links {
				_ = os.RemoveAll(filepath.Join(e.rootfs, l))
				symlink(t, target, filepath.Join(e.rootfs, l))
			}
			e.spec.Linux.Sysctl = map[string]string{"kernel.domainname": "|/estiba-qa-sysctl"}
			adj := 100
			e.spec.Process.OOMScoreAdj = &adj
			r, err := e.runContainer()
			if err != nil {
				t.Logf("run refused (safe): %v: %s", err, strings.TrimSpace(r.stderr))
				return
			}
			t.Logf("domainname inside: %s", r.stdout)
		})
	}
}
