package rootfs

import (
	"fmt"
	"os"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"
)

// FSMaker creates new file system instances for Setup. A new superblock
// belongs to the namespaces and credentials of the process that creates it:
// proc to its pid namespace, sysfs to its network namespace, mqueue to its
// ipc namespace, cgroup to its cgroup namespace, and every file system
// (tmpfs, devpts...) to its user namespace. When Setup runs in a runtime
// thread that only joined the container's mount namespace, the container's
// init must create them and send the mounts back.
type FSMaker interface {
	// NewFS returns a detached mount (fsopen, fsconfig, fsmount with
	// FSMOUNT_CLOEXEC) of a new instance of file system typ configured
	// with c. Errors must wrap the errno (a sysfs refused with EPERM is
	// replaced by a bind of the host's /sys).
	NewFS(typ string, c FSConfig) (int, error)
}

// FSConfig is how a new file system instance is configured, in the order
// fsconfig(2) is called: source, then Flags, then Params, then
// FSCONFIG_CMD_CREATE, then fsmount(Attrs).
type FSConfig struct {
	Source string      // fsconfig "source" if not empty
	Flags  []string    // FSCONFIG_SET_FLAG keys, in order
	Params [][2]string // FSCONFIG_SET_STRING key, value, in order
	Attrs  uint64      // MOUNT_ATTR_* for fsmount
}

// FSBatchMaker is an FSMaker that also makes several instances at once:
// the init stub, which then takes one round trip for all of them instead
// of one each. Setup asks for each batch of instances it knows it will
// need (prefetch) and takes them from it as it goes.
type FSBatchMaker interface {
	FSMaker
	// NewFSBatch returns one detached mount per request, in order, or
	// none and an error.
	NewFSBatch(reqs []FSRequest) ([]int, error)
}

// FSRequest is one file system instance of a batch.
type FSRequest struct {
	Type   string
	Config FSConfig
}

func (q FSRequest) key() string { return fmt.Sprintf("%s %#v", q.Type, q.Config) }

// SameFS tells whether two batches ask for the same instances, in order.
func SameFS(a, b []FSRequest) bool {
	return slices.EqualFunc(a, b, func(x, y FSRequest) bool { return x.key() == y.key() })
}

// FSFunc adapts a function to FSMaker.
type FSFunc func(typ string, c FSConfig) (int, error)

// NewFS calls f.
func (f FSFunc) NewFS(typ string, c FSConfig) (int, error) { return f(typ, c) }

// fsConfig is the one translation of a mount's options to fsconfig calls,
// for the local path and for an FSMaker alike. "silent" and "loud" only set
// the kernel log's verbosity and are not parameters; superblock flags come
// first, then the data options, "key" as a flag and "key=value" as a
// string. Flags and strings are two lists, so a data flag goes before every
// data string whatever their order in the spec: no file system of ours
// gives meaning to the order of a flag relative to a string.
func (o mountOptions) fsConfig(source string) FSConfig {
	c := FSConfig{Source: source, Attrs: o.attrSet | o.recSet}
	for _, f := range o.sbFlags {
		if f == "silent" || f == "loud" {
			continue
		}
		c.Flags = append(c.Flags, f)
	}
	for _, d := range o.data {
		if k, v, hasValue := strings.Cut(d, "="); hasValue {
			c.Params = append(c.Params, [2]string{k, v})
		} else {
			c.Flags = append(c.Flags, d)
		}
	}
	return c
}

// newFS creates a detached mount of a new file system instance, through
// Options.FS if set, else in the calling thread.
func (r *Root) newFS(typ, source string, o mountOptions) (int, error) {
	c := o.fsConfig(source)
	if fd, ok := r.fromPool(FSRequest{typ, c}); ok {
		return fd, nil
	}
	if r.opts.FS == nil {
		return NewFS(typ, c)
	}
	fd, err := r.opts.FS.NewFS(typ, c)
	if err != nil {
		return -1, fmt.Errorf("mount %s: %w", typ, err)
	}
	return fd, nil
}

// NewFS creates, in the calling thread and with its namespaces and
// credentials, a detached mount of a new instance of file system typ: what
// Setup does without Options.FS, and what an FSMaker in the container's
// init does. Errors carry the kernel's own messages about the options.
func NewFS(typ string, c FSConfig) (int, error) {
	fsfd, err := unix.Fsopen(typ, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("mount %s: %w", typ, err)
	}
	defer unix.Close(fsfd)
	if err := configureFS(fsfd, c); err != nil {
		return -1, fmt.Errorf("mount %s: %w", typ, err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, int(c.Attrs))
	if err != nil {
		return -1, fmt.Errorf("mount %s: %w", typ, fsError(fsfd, err))
	}
	return fd, nil
}

// configureFS passes superblock flags and data options to a file system
// context and creates the superblock. Options not taken by the file system
// come back as errors carrying the kernel's own message.
func configureFS(fsfd int, c FSConfig) error {
	if c.Source != "" {
		if err := unix.FsconfigSetString(fsfd, "source", c.Source); err != nil {
			return fmt.Errorf("source %q: %w", c.Source, fsError(fsfd, err))
		}
	}
	for _, f := range c.Flags {
		if err := unix.FsconfigSetFlag(fsfd, f); err != nil {
			return fmt.Errorf("option %q: %w", f, fsError(fsfd, err))
		}
	}
	for _, p := range c.Params {
		if err := unix.FsconfigSetString(fsfd, p[0], p[1]); err != nil {
			return fmt.Errorf("option %q: %w", p[0]+"="+p[1], fsError(fsfd, err))
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fsError(fsfd, err)
	}
	return nil
}

// fsError adds the messages the kernel logged on the file system context.
func fsError(fsfd int, err error) error {
	buf := make([]byte, 256)
	var msgs []string
	for i := 0; i < 8; i++ {
		n, rerr := unix.Read(fsfd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(msgs, "; "))
}

// prefetch makes reqs in one batch when Options.FS can, for newFS to take
// as Setup goes: a batch maker is a process to ask, and a round trip each
// cost more than the work.
func (r *Root) prefetch(reqs []FSRequest) error {
	b, ok := r.opts.FS.(FSBatchMaker)
	if !ok || len(reqs) < 2 {
		return nil
	}
	fds, err := b.NewFSBatch(reqs)
	if err != nil {
		return err
	}
	if r.pool == nil {
		r.pool = map[string][]int{}
	}
	for i, q := range reqs {
		r.pool[q.key()] = append(r.pool[q.key()], fds[i])
	}
	return nil
}

func (r *Root) fromPool(q FSRequest) (int, bool) {
	fds := r.pool[q.key()]
	if len(fds) == 0 {
		return -1, false
	}
	r.pool[q.key()] = fds[1:]
	return fds[0], true
}

// closePool closes what was prefetched and not used.
func (r *Root) closePool() {
	for _, fds := range r.pool {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	r.pool = nil
}

// plannedFS is PlannedFS for r.
func (r *Root) plannedFS() []FSRequest { return PlannedFS(r.spec, r.opts.MountSources) }

// PlannedFS lists the new file system instances that Setup of spec (with
// Options.MountSources sources) asks its FSBatchMaker for in its first
// batch: those of the spec's mounts but the cgroup ones (which may have to
// wait for the container's cgroup), and of the default /dev. Not the
// masks' tmpfs: made now, it would come before the later mounts in
// mountinfo (in mount id order), not where a Go init puts it. A caller
// may have the batch made ahead (the lean create, as soon as its init
// starts).
func PlannedFS(spec *specs.Spec, sources map[int]*os.File) []FSRequest {
	var reqs []FSRequest
	hasDev := false
	for i, m := range spec.Mounts {
		if relPath(m.Destination) == "dev" {
			hasDev = true
		}
		o, err := parseOptions(m.Type, m.Options)
		if err != nil || o.bind || m.Type == "cgroup" || m.Type == "cgroup2" || sources[i] != nil {
			continue
		}
		reqs = append(reqs, FSRequest{m.Type, o.fsConfig(m.Source)})
	}
	if !hasDev {
		o, _ := parseOptions(devTmpfs.Type, devTmpfs.Options)
		reqs = append([]FSRequest{{devTmpfs.Type, o.fsConfig(devTmpfs.Source)}}, reqs...)
	}
	return reqs
}
