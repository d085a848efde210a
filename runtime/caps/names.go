package caps

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// names maps capability numbers to their names, up to the newest the kernel
// defines (include/uapi/linux/capability.h). The index is the number.
var names = [...]string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// Known is the number of the newest capability this package knows.
const Known = len(names) - 1

// Set is a capability set as the kernel stores it: bit n is capability n.
type Set uint64

// Has reports whether capability number c is in s.
func (s Set) Has(c int) bool { return c >= 0 && c < 64 && s&(1<<c) != 0 }

// Names returns the names of the capabilities in s, in number order.
// Capabilities newer than this package are named by number ("CAP_41").
func (s Set) Names() []string {
	out := make([]string, 0, bits.OnesCount64(uint64(s)))
	for c := 0; c < 64; c++ {
		if s.Has(c) {
			out = append(out, Name(c))
		}
	}
	return out
}

// Name returns the name of capability number c.
func Name(c int) string {
	if c >= 0 && c < len(names) {
		return names[c]
	}
	return "CAP_" + strconv.Itoa(c)
}

// Number returns the number of the capability called name. The "CAP_" prefix
// and case are optional, as in Docker's --cap-add ("net_admin" works).
func Number(name string) (int, error) {
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for i, known := range names {
		if known == n {
			return i, nil
		}
	}
	return -1, fmt.Errorf("unknown capability %q", name)
}

// Parse turns capability names into a Set. Every unknown name is reported in
// the error, so a user fixes a whole list at once.
func Parse(list []string) (Set, error) {
	var s Set
	var bad []string
	for _, name := range list {
		c, err := Number(name)
		if err != nil {
			bad = append(bad, strconv.Quote(name))
			continue
		}
		s |= 1 << c
	}
	if len(bad) > 0 {
		return s, fmt.Errorf("unknown capabilities %s (known: CAP_CHOWN … %s)", strings.Join(bad, ", "), names[Known])
	}
	return s, nil
}

// LastCap returns the number of the newest capability the running kernel
// knows. It asks the kernel, which answers PR_CAPBSET_READ past the last
// capability with EINVAL: a binary search of seven prctl calls, which needs
// no /proc (a container's init after pivot_root may have none, or one its
// root has mounted over) and allocates nothing. The answer is kept: the
// kernel's does not change.
func LastCap() (int, error) {
	if n := lastCap.Load(); n > 0 {
		return int(n - 1), nil
	}
	n, err := probeLastCap()
	if err != nil {
		return 0, err
	}
	lastCap.Store(int32(n + 1))
	return n, nil
}

// lastCap is LastCap's answer plus one, 0 until known.
var lastCap atomic.Int32

func probeLastCap() (int, error) {
	lo, hi := 0, 63 // the last valid number is in [lo, hi]
	if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, 0, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("find kernel's last capability: prctl: %w", err)
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(mid), 0, 0, 0); err != nil {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return lo, nil
}

// upTo returns the set of capabilities 0..last.
func upTo(last int) Set {
	if last >= 63 {
		return ^Set(0)
	}
	return Set(1)<<(last+1) - 1
}
