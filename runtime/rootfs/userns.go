package rootfs

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// UserNSFunc adapts a function to UserNSMaker.
type UserNSFunc func(uidMappings, gidMappings []specs.LinuxIDMapping) (*os.File, error)

// UserNS calls f.
func (f UserNSFunc) UserNS(uids, gids []specs.LinuxIDMapping) (*os.File, error) { return f(uids, gids) }

// NewUserNS returns a user namespace with the given mappings, to give
// idmapped mounts their mapping. A user namespace needs a process: see
// newUserNSProc. Its maps are written through /proc/<pid>, so the caller's
// /proc must show its own pid namespace: call it in the runtime, not in a
// container's init that has a new pid namespace but the host's /proc.
func NewUserNS(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	if len(uids) == 0 || len(gids) == 0 {
		return nil, fmt.Errorf("user namespace for idmap: uid and gid mappings are both needed")
	}
	// The child's PR_SET_PDEATHSIG fires when the thread that cloned it
	// ends: it must outlive the few calls below.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, pidfd, err := newUserNSProc()
	if err != nil {
		return nil, fmt.Errorf("user namespace for idmap: %w", err)
	}
	defer reapUserNSProc(pidfd)
	proc := "/proc/" + strconv.Itoa(pid) + "/"
	// Written by us, privileged in the parent namespace: the process in
	// the namespace could map only its own id. No process ever runs in
	// the namespace (it only lends its mapping to mount_setattr), so
	// setgroups is left as it is.
	if err := os.WriteFile(proc+"uid_map", formatIDMap(uids), 0); err != nil {
		return nil, fmt.Errorf("user namespace for idmap: %w", err)
	}
	if err := os.WriteFile(proc+"gid_map", formatIDMap(gids), 0); err != nil {
		return nil, fmt.Errorf("user namespace for idmap: %w", err)
	}
	f, err := os.Open(proc + "ns/user")
	if err != nil {
		return nil, fmt.Errorf("user namespace for idmap: %w", err)
	}
	return f, nil
}

// reapUserNSProc kills the namespace's process (the namespace lives on in
// the descriptors opened on it) and waits for it.
func reapUserNSProc(pidfd int) {
	unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
	for {
		if err := unix.Waitid(unix.P_PIDFD, pidfd, nil, unix.WEXITED, nil); err != unix.EINTR {
			break
		}
	}
	unix.Close(pidfd)
}

func formatIDMap(ms []specs.LinuxIDMapping) []byte {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
	}
	return []byte(b.String())
}
