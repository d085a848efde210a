package container

import "syscall"

// haveVfork: rawVfork exists (vfork_amd64.s), and rootfs.NewUserNS makes a
// user namespace without forking a copy of us.
const haveVfork = true

// rawVfork is in vfork_amd64.s.
func rawVfork(flags uintptr) (pid uintptr, errno syscall.Errno)

// rawClone3 is in vfork_amd64.s.
func rawClone3(args *cloneArgs, size uintptr) (pid uintptr, errno syscall.Errno)
