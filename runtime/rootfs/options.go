package rootfs

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is a spec mount's option list sorted by who applies it: the
// per-mount attributes (mount_setattr on the new mount only, or on the whole
// tree for the r-variants), the propagation type, and the options of the file
// system (fsconfig, superblock-wide).
type mountOptions struct {
	bind      bool // bind or rbind
	recursive bool // rbind
	// attrSet/attrClr apply to the top mount only (as mount(2) flags
	// would); recSet/recClr to every mount of the tree ("rro", "rnosuid"...).
	attrSet, attrClr uint64
	recSet, recClr   uint64
	propagation      uint64 // unix.MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE or 0
	recPropagation   bool
	copyUp           bool // "tmpcopyup": fill the tmpfs with what it covers
	noSymlinks       bool // the destination may not go through a symlink (proc, sysfs)
	idmap            bool // "idmap" or "ridmap"
	recIdmap         bool // "ridmap"
	// sbFlags are superblock flags ("ro", "sync"...) for a new file system;
	// data the file system's own options, "key" or "key=value".
	sbFlags []string
	data    []string
}

// attrOption is one per-mount attribute option: its MOUNT_ATTR_* bits to set
// and to clear. The atime options set one value of a multi-bit field, so they
// clear the whole field first, as mount_setattr(2) requires.
type attrOption struct{ set, clr uint64 }

var attrOptions = map[string]attrOption{
	"ro":            {unix.MOUNT_ATTR_RDONLY, 0},
	"rw":            {0, unix.MOUNT_ATTR_RDONLY},
	"nosuid":        {unix.MOUNT_ATTR_NOSUID, 0},
	"suid":          {0, unix.MOUNT_ATTR_NOSUID},
	"nodev":         {unix.MOUNT_ATTR_NODEV, 0},
	"dev":           {0, unix.MOUNT_ATTR_NODEV},
	"noexec":        {unix.MOUNT_ATTR_NOEXEC, 0},
	"exec":          {0, unix.MOUNT_ATTR_NOEXEC},
	"nodiratime":    {unix.MOUNT_ATTR_NODIRATIME, 0},
	"diratime":      {0, unix.MOUNT_ATTR_NODIRATIME},
	"relatime":      {unix.MOUNT_ATTR_RELATIME, unix.MOUNT_ATTR__ATIME},
	"norelatime":    {unix.MOUNT_ATTR_STRICTATIME, unix.MOUNT_ATTR__ATIME},
	"noatime":       {unix.MOUNT_ATTR_NOATIME, unix.MOUNT_ATTR__ATIME},
	"atime":         {unix.MOUNT_ATTR_RELATIME, unix.MOUNT_ATTR__ATIME},
	"strictatime":   {unix.MOUNT_ATTR_STRICTATIME, unix.MOUNT_ATTR__ATIME},
	"nostrictatime": {unix.MOUNT_ATTR_RELATIME, unix.MOUNT_ATTR__ATIME},
	"nosymfollow":   {unix.MOUNT_ATTR_NOSYMFOLLOW, 0},
	"symfollow":     {0, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

var propagationOptions = map[string]uint64{
	"shared":     unix.MS_SHARED,
	"slave":      unix.MS_SLAVE,
	"private":    unix.MS_PRIVATE,
	"unbindable": unix.MS_UNBINDABLE,
}

// sbOptions are superblock flags: fsconfig(2) takes them as flags of a new
// file system; a bind mount shares its source's superblock and cannot change
// them. The value says whether the option is the default (a no-op on a bind).
var sbOptions = map[string]bool{
	"sync": false, "async": true,
	"dirsync": false,
	"mand":    false, "nomand": true,
	"lazytime": false, "nolazytime": true,
	"silent": true, "loud": true,
}

// parseOptions sorts a spec mount's options. Unknown options are file system
// data, as mount(8) and runc treat them (the file system then refuses what it
// does not know, with its own message).
func parseOptions(typ string, opts []string) (mountOptions, error) {
	var m mountOptions
	m.bind = typ == "bind"
	for _, o := range opts {
		switch o {
		case "bind":
			m.bind = true
			continue
		case "rbind":
			m.bind, m.recursive = true, true
			continue
		case "idmap":
			m.idmap = true
			continue
		case "ridmap":
			m.idmap, m.recIdmap = true, true
			continue
		case "defaults":
			continue
		case "remount":
			return m, fmt.Errorf("option %q: a mount in the spec is always a new mount", o)
		case "tmpcopyup":
			if typ != "tmpfs" {
				return m, fmt.Errorf("option %q: only for tmpfs", o)
			}
			m.copyUp = true
			continue
		}
		if a, ok := attrOptions[o]; ok {
			m.attrSet = m.attrSet&^a.clr | a.set
			// ro/rw are per-mount only, never superblock flags: procfs
			// and sysfs share one superblock per namespace, so a read-only
			// superblock would be read-only on the host too.
			m.attrClr |= a.clr
			continue
		}
		if a, ok := attrOptions[strings.TrimPrefix(o, "r")]; ok && strings.HasPrefix(o, "r") {
			m.recSet = m.recSet&^a.clr | a.set
			m.recClr |= a.clr
			continue
		}
		if p, ok := propagationOptions[o]; ok {
			m.propagation, m.recPropagation = p, false
			continue
		}
		if p, ok := propagationOptions[strings.TrimPrefix(o, "r")]; ok {
			m.propagation, m.recPropagation = p, true
			continue
		}
		if _, ok := sbOptions[o]; ok {
			m.sbFlags = append(m.sbFlags, o)
			continue
		}
		m.data = append(m.data, o)
	}
	// Bits set win over the same bits cleared (the last of ro/rw already
	// removed the other from attrSet), but the atime field must be cleared
	// whole whenever it is set at all (mount_setattr(2)).
	m.attrClr = m.attrClr&^m.attrSet | m.attrClr&unix.MOUNT_ATTR__ATIME
	m.recClr = m.recClr&^m.recSet | m.recClr&unix.MOUNT_ATTR__ATIME
	if m.bind {
		// A bind mount has no file system of its own to take data
		// options: mount(2) ignores them with MS_BIND, runc passes them
		// along, and specs (the OCI conformance suite among them) carry
		// "mode=" or "size=" on binds. They are dropped, as there.
		m.data = nil
		for _, f := range m.sbFlags {
			if !sbOptions[f] {
				return m, fmt.Errorf("bind mount: option %q changes the source's file system, not the mount", f)
			}
		}
		m.sbFlags = nil
	}
	if m.idmap && !m.bind {
		return m, fmt.Errorf("option idmap: only bind mounts can be idmapped here")
	}
	return m, nil
}
