package rootfs

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// UserNSFunc adapts a function to UserNSMaker.
type UserNSFunc func(uidMappings, gidMappings []specs.LinuxIDMapping) (*os.File, error)

// UserNS calls f.
func (f UserNSFunc) UserNS(uids, gids []specs.LinuxIDMapping) (*os.File, error) { return f(uids, gids) }

// NewUserNS returns a user namespace with the given mappings, to give
// idmapped mounts their mapping. A user namespace needs a process: a copy of
// the calling binary is started in a new one, stopped by ptrace before its
// first instruction, the namespace is opened through it, and it is killed.
// Go writes the maps through /proc/<pid>, so the caller's /proc must show
// its own pid namespace: call it in the runtime, not in a container's init
// that has a new pid namespace but the host's /proc.
func NewUserNS(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	if len(uids) == 0 || len(gids) == 0 {
		return nil, fmt.Errorf("user namespace for idmap: uid and gid mappings are both needed")
	}
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"estiba-userns-holder"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{
			Ptrace:      true, // stops at exec: nothing of the copy ever runs
			Cloneflags:  unix.CLONE_NEWUSER,
			UidMappings: idMaps(uids),
			GidMappings: idMaps(gids),
			Pdeathsig:   syscall.SIGKILL,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("user namespace for idmap: %w", err)
	}
	defer func() {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != unix.EINTR {
				break
			}
		}
	}()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/user")
	if err != nil {
		return nil, fmt.Errorf("user namespace for idmap: %w", err)
	}
	return f, nil
}

func idMaps(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(ms))
	for i, m := range ms {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}
