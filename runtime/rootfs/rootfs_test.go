package rootfs

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// newBundle makes a bundle whose rootfs holds a static busybox with a few
// applet links and the usual top-level directories.
func newBundle(t testing.TB) string {
	t.Helper()
	bundle := t.TempDir()
	root := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, "/bin/busybox", filepath.Join(root, "bin/busybox"))
	for _, a := range []string{"sh", "ls", "cat", "mount"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	return bundle
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

// runcSpec is the mount part of the spec `runc spec` writes.
func runcSpec() *specs.Spec {
	return &specs.Spec{
		Root: &specs.Root{Path: "rootfs"},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

func mountAt(rep report, point string) (mountEntry, bool) {
	var found mountEntry
	ok := false
	for _, m := range rep.Mounts {
		if m.Point == point {
			found, ok = m, true // the last one is on top
		}
	}
	return found, ok
}

func hasOpt(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

func TestSetupPivotRuncSpec(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	bundle := newBundle(t)
	probes := []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
		"/dev/ptmx", "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr",
		"/proc/kcore", "/proc/keys", "/proc/acpi", "/sys/firmware", "/proc/sys", "/proc/sys/kernel/hostname",
		"/proc/timer_list", "/tmp", "/sys/fs/cgroup", "/sys/fs/cgroup/memory"}
	res := runInChild(t, "plain+exec", runcSpec(), bundle, probes)
	if res.err != nil {
		t.Fatalf("child: %v\n%s", res.err, res.stderr)
	}
	rep := res.rep
	if want := "/dev/null\n/dev/pts/ptmx\n"; !strings.HasPrefix(rep.Exec, want) {
		t.Errorf("busybox in the container: %q, want %q first", rep.Exec, want)
	}

	mounts := []struct {
		point, fstype string
		opts          []string
	}{
		{"/", "", nil},
		{"/proc", "proc", []string{"rw"}},
		{"/dev", "tmpfs", []string{"nosuid"}},
		{"/dev/pts", "devpts", []string{"nosuid", "noexec"}},
		{"/dev/shm", "tmpfs", []string{"nosuid", "nodev", "noexec"}},
		{"/dev/mqueue", "mqueue", []string{"nosuid", "nodev", "noexec"}},
		{"/sys", "sysfs", []string{"ro", "nosuid", "nodev", "noexec"}},
		{"/sys/fs/cgroup", "tmpfs", []string{"ro", "nosuid", "nodev", "noexec"}},
		{"/sys/fs/cgroup/memory", "cgroup", []string{"ro", "nosuid"}},
		{"/sys/fs/cgroup/unified", "cgroup2", []string{"ro", "nosuid"}},
		{"/proc/sys", "proc", []string{"ro", "nosuid", "nodev", "noexec"}},
		{"/proc/keys", "tmpfs", nil}, // /dev/null from /dev's tmpfs
		{"/proc/acpi", "tmpfs", []string{"ro"}},
		{"/sys/firmware", "tmpfs", []string{"ro"}},
	}
	for _, want := range mounts {
		got, ok := mountAt(rep, want.point)
		if !ok {
			t.Errorf("no mount at %s", want.point)
			continue
		}
		if want.fstype != "" && got.FSType != want.fstype {
			t.Errorf("%s: type %s, want %s", want.point, got.FSType, want.fstype)
		}
		for _, o := range want.opts {
			if !hasOpt(got.Opts, o) {
				t.Errorf("%s: options %s lack %s", want.point, got.Opts, o)
			}
		}
	}
	// Nothing of the host: every mount point is one the spec made.
	for _, m := range rep.Mounts {
		if m.Point != "/" && !strings.HasPrefix(m.Point, "/proc") && !strings.HasPrefix(m.Point, "/dev") && !strings.HasPrefix(m.Point, "/sys") {
			t.Errorf("unexpected mount in the container: %+v", m)
		}
	}

	devs := map[string]uint64{"/dev/null": unix.Mkdev(1, 3), "/dev/zero": unix.Mkdev(1, 5), "/dev/full": unix.Mkdev(1, 7),
		"/dev/random": unix.Mkdev(1, 8), "/dev/urandom": unix.Mkdev(1, 9), "/dev/tty": unix.Mkdev(5, 0)}
	for p, rdev := range devs {
		pr := rep.Probes[p]
		if pr.Mode != unix.S_IFCHR|0o666 || pr.Rdev != rdev {
			t.Errorf("%s: mode %#o rdev %d:%d, want char 0666 %d:%d", p, pr.Mode, unix.Major(pr.Rdev), unix.Minor(pr.Rdev), unix.Major(rdev), unix.Minor(rdev))
		}
	}
	links := map[string]string{"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2"}
	for p, target := range links {
		if pr := rep.Probes[p]; pr.LinkTarget != target {
			t.Errorf("%s: link to %q, want %q", p, pr.LinkTarget, target)
		}
	}

	// This kernel has no /proc/kcore: masks of missing paths are skipped.
	for _, p := range []string{"/proc/keys", "/proc/timer_list"} {
		if pr := rep.Probes[p]; pr.Read != "" || pr.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("%s not masked: %+v", p, pr)
		}
	}
	for _, p := range []string{"/proc/acpi", "/sys/firmware"} {
		if pr := rep.Probes[p]; pr.Exists && pr.CreateErr != "EROFS" {
			t.Errorf("%s: masked directory writable: %+v", p, pr)
		}
	}
	if pr := rep.Probes["/proc/sys/kernel/hostname"]; pr.WriteErr != "EROFS" {
		t.Errorf("/proc/sys writable: %+v", pr)
	}
	if pr := rep.Probes["/tmp"]; pr.CreateErr != "" {
		t.Errorf("/tmp of a read-write root not writable: %+v", pr)
	}
	if pr := rep.Probes["/sys/fs/cgroup/memory"]; !pr.IsDir || pr.FSMagic != unix.CGROUP_SUPER_MAGIC {
		t.Errorf("/sys/fs/cgroup/memory: %+v", pr)
	}
}
