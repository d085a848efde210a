package nsthread

import (
	"fmt"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// SetFSOwner makes the calling thread create files as uid and gid (host
// ids), keeping its capabilities over files. Call it first in Run's f when
// the container has a user namespace:
//
//   - a file system made by init in its user namespace (tmpfs, devpts...)
//     refuses an inode whose owner has no mapping there: host root
//     (fsuid 0) gets EOVERFLOW from mkdir, mknod, symlink and open(O_CREAT)
//     unless it creates as a mapped id, such as the container's root;
//   - a change of fsuid from 0 clears the file capabilities (CAP_CHOWN,
//     CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_MKNOD...) from the effective set,
//     so chown of a copied-up file or mknod would then fail with EPERM:
//     they are raised again from the permitted set, which keeps them.
//
// Both are per-thread in the kernel (setfsuid, setfsgid and capset are raw
// system calls here, not Go's all-threads ones), and a Run thread ends with
// f. One thing is process-wide: a change of a thread's credentials makes
// the whole process non-dumpable (fs.suid_dumpable, commit_creds). Call the
// returned func when the thread is done: the last one gives the process its
// dumpable flag back.
func SetFSOwner(uid, gid int) (done func(), err error) {
	dumpable.Lock()
	if dumpable.n == 0 {
		dumpable.was, _ = unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	}
	dumpable.n++
	dumpable.Unlock()
	done = sync.OnceFunc(undoFSOwner)
	if err := setFSOwner(uid, gid); err != nil {
		done()
		return nil, err
	}
	return done, nil
}

// dumpable counts the threads with an fsuid of SetFSOwner's, and keeps the
// process's dumpable flag from before the first.
var dumpable struct {
	sync.Mutex
	n   int
	was int
}

func undoFSOwner() {
	dumpable.Lock()
	defer dumpable.Unlock()
	if dumpable.n--; dumpable.n > 0 {
		return
	}
	// Under ForkLock: the runtime's vfork spawns (runtime/container) make
	// the process non-dumpable while their children share its memory, and
	// restore it themselves.
	syscall.ForkLock.Lock()
	unix.Prctl(unix.PR_SET_DUMPABLE, uintptr(dumpable.was), 0, 0, 0)
	syscall.ForkLock.Unlock()
}

func setFSOwner(uid, gid int) error {
	unix.Setfsgid(gid)
	unix.Setfsuid(uid)
	// setfs[ug]id return the previous id, never an error: -1 (no valid
	// id) reads the current one back.
	if got, _ := unix.SetfsgidRetGid(-1); got != gid {
		return fmt.Errorf("nsthread: setfsgid(%d) refused (fsgid is %d)", gid, got)
	}
	if got, _ := unix.SetfsuidRetUid(-1); got != uid {
		return fmt.Errorf("nsthread: setfsuid(%d) refused (fsuid is %d)", uid, got)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("nsthread: capget: %w", err)
	}
	data[0].Effective, data[1].Effective = data[0].Permitted, data[1].Permitted
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("nsthread: capset: %w", err)
	}
	return nil
}
