package specgen

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/engine/inroot"
	"github.com/estiba/estiba/internal/openat"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func defaultMounts(privileged bool) []specs.Mount {
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	if privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev", "rw"}
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev", "relatime"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	}
}

var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// userMounts adds -v, --mount, --tmpfs, --init and the generated /etc files.
// Mounts over the same destination: the user's win (they come later).
func userMounts(s *specs.Spec, in *Input, hc *types.HostConfig, d *Defaults) error {
	var ms []specs.Mount
	for _, b := range hc.Binds {
		m, err := ParseBind(b, d.VolumesDir)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	for _, m := range hc.Mounts {
		spec, err := mountOf(m, d.VolumesDir)
		if err != nil {
			return err
		}
		ms = append(ms, spec)
	}
	for dst, opts := range hc.Tmpfs {
		if !filepath.IsAbs(dst) {
			return fmt.Errorf("tmpfs destination %q is not absolute: %w", dst, errdefs.ErrInvalid)
		}
		o := []string{"nosuid", "nodev", "noexec"}
		if opts != "" {
			o = append(o, strings.Split(opts, ",")...)
		}
		ms = append(ms, specs.Mount{Destination: filepath.Clean(dst), Type: "tmpfs", Source: "tmpfs", Options: o})
	}
	if hc.Init != nil && *hc.Init {
		ms = append(ms, specs.Mount{Destination: InitDest, Type: "bind", Source: d.InitPath, Options: []string{"rbind", "ro", "nosuid", "nodev"}})
	}
	if in.ContainerDir != "" {
		var err error
		if ms, err = etcFiles(in, hc, ms); err != nil {
			return err
		}
	}
	s.Mounts = append(s.Mounts, ms...)
	return nil
}

// ParseBind parses -v SRC:DST[:OPTS]. A SRC that is not absolute names a
// volume under volumesDir, made on first use.
func ParseBind(spec, volumesDir string) (specs.Mount, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		if len(parts) == 1 && filepath.IsAbs(parts[0]) {
			return specs.Mount{}, fmt.Errorf("anonymous volume %q is not supported, name it (-v NAME:%s): %w", spec, spec, errdefs.ErrInvalid)
		}
		return specs.Mount{}, fmt.Errorf("invalid volume spec %q: %w", spec, errdefs.ErrInvalid)
	}
	mode := ""
	if len(parts) == 3 {
		mode = parts[2]
	}
	return mountOf(types.Mount{Source: parts[0], Target: parts[1], ReadOnly: hasOpt(mode, "ro")}, volumesDir)
}

func hasOpt(mode, o string) bool {
	for _, m := range strings.Split(mode, ",") {
		if m == o {
			return true
		}
	}
	return false
}

func mountOf(m types.Mount, volumesDir string) (specs.Mount, error) {
	if !filepath.IsAbs(m.Target) {
		return specs.Mount{}, fmt.Errorf("mount destination %q is not absolute: %w", m.Target, errdefs.ErrInvalid)
	}
	src := m.Source
	switch {
	case m.Type == "tmpfs":
		o := []string{"nosuid", "nodev", "noexec"}
		if m.ReadOnly {
			o = append(o, "ro")
		}
		return specs.Mount{Destination: filepath.Clean(m.Target), Type: "tmpfs", Source: "tmpfs", Options: o}, nil
	case m.Type != "" && m.Type != "bind" && m.Type != "volume":
		return specs.Mount{}, fmt.Errorf("mount type %q is not supported: %w", m.Type, errdefs.ErrInvalid)
	case filepath.IsAbs(src):
		if _, err := os.Stat(src); err != nil {
			return specs.Mount{}, fmt.Errorf("bind source %s: %v: %w", src, err, errdefs.ErrInvalid)
		}
	default:
		if !volumeName.MatchString(src) {
			return specs.Mount{}, fmt.Errorf("invalid volume name %q: %w", src, errdefs.ErrInvalid)
		}
		if volumesDir == "" {
			return specs.Mount{}, fmt.Errorf("named volumes are not configured: %w", errdefs.ErrInvalid)
		}
		src = filepath.Join(volumesDir, src, "_data")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return specs.Mount{}, fmt.Errorf("volume %s: %w", m.Source, err)
		}
	}
	o := []string{"rbind", "rprivate"}
	if m.ReadOnly {
		o = append(o, "ro")
	}
	return specs.Mount{Destination: filepath.Clean(m.Target), Type: "bind", Source: src, Options: o}, nil
}

// etcFiles gives the container its /etc/hostname, /etc/hosts and
// /etc/resolv.conf, after the mounts in user (which it returns with its
// own added).
//
// They are written into the container's rootfs, files of its own layer
// like any it writes: Docker's way, files of the container's directory
// bind-mounted over the image's, pins for as long as the container runs
// three more mounts, their files' inodes and dentries, and the overlay's
// inodes under them (~16 KiB a container, which users with thousands of
// containers pay thousands of times). The container sees the same: its
// own files, which its root may edit, read-only with --read-only, written
// anew at each start. A mount of the user's at one of them wins, as with
// Docker: that file is not written. Where a mount covers /etc itself, or
// there is no rootfs to write into, they are bind-mounted from the
// container's directory as Docker does.
func etcFiles(in *Input, hc *types.HostConfig, user []specs.Mount) ([]specs.Mount, error) {
	if hc.NetworkMode == "host" {
		return append(user,
			specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: "/etc/hosts", Options: []string{"rbind", "ro"}},
			specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: "/etc/resolv.conf", Options: []string{"rbind", "ro"}},
		), nil
	}
	name := hostname(in)
	files := map[string][]byte{
		"hostname":    []byte(name + "\n"),
		"hosts":       []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + name + "\n"),
		"resolv.conf": []byte(hostResolvers()),
	}
	owner := etcOwner(in.UsernsBase)
	bind := in.Rootfs == ""
	for _, m := range user {
		bind = bind || filepath.Clean(m.Destination) == "/etc"
	}
	if !bind {
		for f := range files {
			if mountedAt(user, "/etc/"+f) {
				delete(files, f)
			}
		}
		return user, writeInRootfs(in.Rootfs, files, owner)
	}
	for _, f := range etcNames {
		p := filepath.Join(in.ContainerDir, f)
		if err := writeFile(p, files[f], 0o644, owner); err != nil {
			return nil, fmt.Errorf("write %s: %w", f, err)
		}
		user = append(user, specs.Mount{Destination: "/etc/" + f, Type: "bind", Source: p, Options: []string{"rbind", "rprivate"}})
	}
	return user, nil
}

var etcNames = []string{"hostname", "hosts", "resolv.conf"}

// etcOwner is who owns the container's /etc files: its root, as with
// Docker's userns-remap (it may edit its /etc/hosts); 0 keeps them as
// created. Only root gives files away; a daemon not run as root has no id
// ranges to hand out.
func etcOwner(usernsBase uint32) int {
	if os.Geteuid() != 0 {
		return 0
	}
	return int(usernsBase)
}

func mountedAt(ms []specs.Mount, dest string) bool {
	for _, m := range ms {
		if filepath.Clean(m.Destination) == dest {
			return true
		}
	}
	return false
}

// WriteEtcFiles rewrites the container's /etc files named in files
// ("hosts", "resolv.conf": what the network gives it once attached) where
// etcFiles put them for spec s: in the container's directory when
// bind-mounted from there, else in the rootfs, which must still be mounted
// at s.Root.Path. A mount of the user's there is left alone.
func WriteEtcFiles(s *specs.Spec, containerDir string, files map[string][]byte, usernsBase uint32) error {
	owner := etcOwner(usernsBase)
	inRootfs := map[string][]byte{}
	for name, data := range files {
		p := filepath.Join(containerDir, name)
		switch i := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return filepath.Clean(m.Destination) == "/etc/"+name }); {
		case i < 0:
			inRootfs[name] = data
		case s.Mounts[i].Source == p:
			if err := writeFile(p, data, 0o644, owner); err != nil {
				return err
			}
		}
	}
	return writeInRootfs(s.Root.Path, inRootfs, owner)
}

// writeInRootfs writes files (names in /etc) into the rootfs (see inroot).
func writeInRootfs(rootfs string, files map[string][]byte, owner int) error {
	if len(files) == 0 {
		return nil
	}
	root, err := inroot.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	for name, data := range files {
		if err := inroot.WriteFile(root, "etc/"+name, data, owner); err != nil {
			return fmt.Errorf("write /etc/%s in the rootfs: %w", name, err)
		}
	}
	return nil
}

// writeFile writes data to path, owned by owner (0: as created). Plain
// system calls, not os.File's: an os.File tries the poller on every open
// (four fcntls and an epoll_ctl that a regular file refuses), and a start
// writes several small files.
func writeFile(path string, data []byte, perm uint32, owner int) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	op, err := "write", openat.WriteAll(fd, data)
	if err == nil && owner > 0 {
		op, err = "chown", unix.Fchown(fd, owner, owner)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		op, err = "close", cerr
	}
	if err != nil {
		return &os.PathError{Op: op, Path: path, Err: err}
	}
	return nil
}

// ResolveUser turns "name|uid[:group|gid]" into ids, reading the
// container's /etc/passwd and /etc/group inside its rootfs only
// (RESOLVE_IN_ROOT: the image's symlinks cannot lead us out of it).
func ResolveUser(rootfs, user string) (specs.User, error) {
	if user == "" {
		return specs.User{}, nil
	}
	name, group, hasGroup := strings.Cut(user, ":")
	var u specs.User
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		u.UID = uint32(id)
		// The primary group of a numeric uid comes from passwd if listed.
		if e, ok := lookup(rootfs, "etc/passwd", func(f []string) bool { return f[2] == name }); ok && len(e) > 3 {
			gid, _ := strconv.ParseUint(e[3], 10, 32)
			u.GID = uint32(gid)
		}
	} else {
		e, ok := lookup(rootfs, "etc/passwd", func(f []string) bool { return f[0] == name })
		if !ok || len(e) < 4 {
			return u, fmt.Errorf("unable to find user %s: no matching entries in passwd file: %w", name, errdefs.ErrInvalid)
		}
		uid, err1 := strconv.ParseUint(e[2], 10, 32)
		gid, err2 := strconv.ParseUint(e[3], 10, 32)
		if err1 != nil || err2 != nil {
			return u, fmt.Errorf("bad passwd entry for %s: %w", name, errdefs.ErrInvalid)
		}
		u.UID, u.GID = uint32(uid), uint32(gid)
	}
	if hasGroup {
		if id, err := strconv.ParseUint(group, 10, 32); err == nil {
			u.GID = uint32(id)
		} else {
			e, ok := lookup(rootfs, "etc/group", func(f []string) bool { return f[0] == group })
			if !ok || len(e) < 3 {
				return u, fmt.Errorf("unable to find group %s: no matching entries in group file: %w", group, errdefs.ErrInvalid)
			}
			gid, _ := strconv.ParseUint(e[2], 10, 32)
			u.GID = uint32(gid)
		}
	}
	return u, nil
}

func lookup(rootfs, file string, match func([]string) bool) ([]string, bool) {
	if rootfs == "" {
		return nil, false
	}
	root, err := os.Open(rootfs)
	if err != nil {
		return nil, false
	}
	defer root.Close()
	f, err := openRegular(int(root.Fd()), file)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 3 && match(fields) {
			return fields, true
		}
	}
	return nil, false
}

// openRegular opens file under root for reading if it is a regular file.
// The image is hostile: a FIFO there would block the daemon in open, and
// a device node opened through the host's mount of the rootfs is the
// host's device. So the path is resolved to an O_PATH descriptor first
// (which opens nothing), checked, and only then opened, through that
// descriptor (the same inode, whatever the image's path does meanwhile).
func openRegular(root int, file string) (*os.File, error) {
	p, err := openat.Openat2(root, file, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return nil, err
	}
	defer unix.Close(p)
	var st unix.Stat_t
	if err := unix.Fstat(p, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", file)
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(p), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), file), nil
}

// hostResolvers is the host's resolv.conf without loopback nameservers,
// which a container's own network namespace cannot reach. The network
// layer rewrites the file when it attaches the container.
func hostResolvers() string {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return ""
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "nameserver" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
