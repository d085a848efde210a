package openat

import (
	"os"

	"golang.org/x/sys/unix"
)

// ReadFile is os.ReadFile with plain system calls. os.Open registers every
// file with Go's network poller, which the first time in a process also
// creates it (an epoll and an eventfd descriptor, a sysmon that polls
// them): ~8 system calls for one small read, in processes that live
// milliseconds (the runtime, a container's init).
func ReadFile(path string) ([]byte, error) {
	return readFileAt(unix.AT_FDCWD, path, 0)
}

// ReadFileAt is ReadFile of name below the directory dir, not following a
// symlink in its last component.
func ReadFileAt(dir int, name string) ([]byte, error) {
	return readFileAt(dir, name, unix.O_NOFOLLOW)
}

func readFileAt(dir int, name string, flags int) ([]byte, error) {
	var fd int
	var err error
	for {
		if fd, err = unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC|flags, 0); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	return readAll(fd, name)
}

// readAll reads fd (opened as path) to its end.
func readAll(fd int, path string) ([]byte, error) {
	// A regular file's size is the buffer (one byte more, so that the
	// read that sees EOF needs no growth): a 12 KiB config.json grown
	// from 512 bytes was ~32 KiB of garbage and six reads, in every
	// create of the monitor's long-lived spawner too. /proc files say 0.
	size := 512
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size > 0 && st.Size < 1<<30 {
		size = int(st.Size) + 1
	}
	b := make([]byte, 0, size)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// WriteFile is os.WriteFile with plain system calls (see ReadFile): it
// creates or truncates path with perm and writes b.
func WriteFile(path string, b []byte, perm uint32) error {
	var fd int
	var err error
	for {
		if fd, err = unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, perm); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	if err := WriteAll(fd, b); err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	if err := unix.Close(fd); err != nil {
		return &os.PathError{Op: "close", Path: path, Err: err}
	}
	return nil
}

// WriteAll writes all of b to fd, retrying on EINTR and after short writes.
func WriteAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
