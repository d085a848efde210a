// Package defaults turns an image config into a container's defaults: what
// the engine uses when the user did not say otherwise.
package defaults

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/estiba/estiba/internal/openat"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// User is a resolved process identity.
type User struct {
	UID            uint32
	GID            uint32
	AdditionalGids []uint32
	Home           string
}

// Defaults are a container's settings taken from its image.
type Defaults struct {
	Env          []string
	Entrypoint   []string
	Cmd          []string
	WorkingDir   string
	User         User
	ExposedPorts []string // "80/tcp"
	Volumes      []string
	Labels       map[string]string
	StopSignal   string
}

// FromImage computes defaults from cfg, resolving cfg.User against
// /etc/passwd and /etc/group of the mounted rootfs (read without leaving
// it: symlinks resolve inside the rootfs). A missing passwd is fine for
// numeric users; a named user that cannot be found is an error.
func FromImage(cfg ocispec.ImageConfig, rootfs string) (Defaults, error) {
	d := Defaults{
		Env:        append([]string(nil), cfg.Env...),
		Entrypoint: cfg.Entrypoint,
		Cmd:        cfg.Cmd,
		WorkingDir: cfg.WorkingDir,
		Labels:     cfg.Labels,
		StopSignal: cfg.StopSignal,
	}
	if d.WorkingDir == "" {
		d.WorkingDir = "/"
	}
	for p := range cfg.ExposedPorts {
		d.ExposedPorts = append(d.ExposedPorts, p)
	}
	sort.Strings(d.ExposedPorts)
	for v := range cfg.Volumes {
		d.Volumes = append(d.Volumes, v)
	}
	sort.Strings(d.Volumes)
	u, err := ResolveUser(cfg.User, rootfs)
	if err != nil {
		return Defaults{}, err
	}
	d.User = u
	if !hasEnv(d.Env, "PATH") {
		d.Env = append(d.Env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if !hasEnv(d.Env, "HOME") && u.Home != "" {
		d.Env = append(d.Env, "HOME="+u.Home)
	}
	return d, nil
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// ResolveUser resolves "user", "uid", "user:group", "uid:gid" and mixes.
func ResolveUser(spec, rootfs string) (User, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	passwd, err := readPasswd(rootfs)
	if err != nil {
		return User{}, err
	}
	groups, err := readGroup(rootfs)
	if err != nil {
		return User{}, err
	}
	u := User{Home: "/"}
	var name string
	if userPart == "" {
		userPart = "0"
	}
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		u.UID = uint32(n)
		for _, p := range passwd {
			if p.uid == u.UID {
				u.GID, u.Home, name = p.gid, p.home, p.name
				break
			}
		}
	} else {
		found := false
		for _, p := range passwd {
			if p.name == userPart {
				u.UID, u.GID, u.Home, name, found = p.uid, p.gid, p.home, p.name, true
				break
			}
		}
		if !found {
			return User{}, fmt.Errorf("user %q: no such user in the image's /etc/passwd", userPart)
		}
	}
	if hasGroup {
		gid, err := lookupGroup(groupPart, groups)
		if err != nil {
			return User{}, err
		}
		u.GID = gid
		return u, nil // an explicit group replaces supplementary ones, as Docker does
	}
	if name != "" {
		for _, g := range groups {
			if g.gid != u.GID && contains(g.members, name) {
				u.AdditionalGids = append(u.AdditionalGids, g.gid)
			}
		}
	}
	return u, nil
}

func lookupGroup(spec string, groups []groupEntry) (uint32, error) {
	if n, err := strconv.ParseUint(spec, 10, 32); err == nil {
		return uint32(n), nil
	}
	for _, g := range groups {
		if g.name == spec {
			return g.gid, nil
		}
	}
	return 0, fmt.Errorf("group %q: no such group in the image's /etc/group", spec)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readInRoot reads a small file of the rootfs; symlinks resolve as if
// rootfs were "/", so an image cannot point us at a host file.
func readInRoot(rootfs, name string) ([]byte, error) {
	if rootfs == "" {
		return nil, nil
	}
	root, err := unix.Open(rootfs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(root)
	fd, err := openat.Openat2(root, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in rootfs: %w", name, err)
	}
	var buf bytes.Buffer
	_, err = io.Copy(&buf, io.LimitReader(fdReader(fd), 4<<20))
	unix.Close(fd)
	return buf.Bytes(), err
}

type fdReader int

func (f fdReader) Read(p []byte) (int, error) {
	n, err := unix.Read(int(f), p)
	if n == 0 && err == nil {
		return 0, io.EOF
	}
	if n < 0 {
		n = 0
	}
	return n, err
}

func lines(b []byte, fn func(fields []string)) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		fn(strings.Split(l, ":"))
	}
}

func readPasswd(rootfs string) ([]passwdEntry, error) {
	b, err := readInRoot(rootfs, "etc/passwd")
	var out []passwdEntry
	lines(b, func(f []string) {
		if len(f) < 7 {
			return
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 == nil && err2 == nil {
			out = append(out, passwdEntry{f[0], uint32(uid), uint32(gid), f[5]})
		}
	})
	return out, err
}

func readGroup(rootfs string) ([]groupEntry, error) {
	b, err := readInRoot(rootfs, "etc/group")
	var out []groupEntry
	lines(b, func(f []string) {
		if len(f) < 4 {
			return
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return
		}
		var members []string
		if f[3] != "" {
			members = strings.Split(f[3], ",")
		}
		out = append(out, groupEntry{f[0], uint32(gid), members})
	})
	return out, err
}
