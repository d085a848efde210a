//go:build !amd64

package container

import "syscall"

// haveVfork: other architectures keep Go's fork for a new user namespace.
const haveVfork = false

//go:nosplit
func rawVfork(flags uintptr) (pid uintptr, errno syscall.Errno) { return 0, syscall.ENOSYS }

//go:nosplit
func rawClone3(args *cloneArgs, size uintptr) (pid uintptr, errno syscall.Errno) {
	return 0, syscall.ENOSYS
}
