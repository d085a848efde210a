// Package openat wraps openat2(2) with the retry its RESOLVE_* modes need.
package openat

import "golang.org/x/sys/unix"

// maxRetries bounds the EAGAIN loop. The kernel returns EAGAIN from a
// RESOLVE_IN_ROOT or RESOLVE_BENEATH lookup whenever any mount or rename
// happened anywhere on the host during the walk (it checks global seqlocks,
// not just the path's own dentries), so on a busy host a single failure is
// normal and a retry almost always succeeds; only a host mounting
// continuously could exhaust the budget.
const maxRetries = 1024

// Openat2 is unix.Openat2, retried on EAGAIN and EINTR.
func Openat2(dirfd int, path string, how *unix.OpenHow) (int, error) {
	var err error
	for i := 0; i < maxRetries; i++ {
		var fd int
		fd, err = unix.Openat2(dirfd, path, how)
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
	return -1, err
}
