package cgroups

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/estiba/estiba/internal/openat"
	"golang.org/x/sys/unix"
)

// The control files are read and written with raw syscalls, not os.File:
// kernfs and procfs files can be polled, so os.OpenFile makes each one
// non-blocking and registers it with Go's netpoller (two fcntls, an epoll
// add and, at close, a delete), four needless syscalls per file and a few
// dozen files per container start and delete.

// writeFile writes one value to a cgroup control file. Control files always
// exist when the controller is enabled, so the file is never created: a
// missing file means the kernel lacks the knob, and the error says which.
func writeFile(dir, name, value string) error {
	p := filepath.Join(dir, name)
	fd, err := openRaw(p, unix.O_WRONLY|unix.O_TRUNC)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("write %q to %s: %w (controller not enabled or knob not supported by this kernel)", value, p, err)
		}
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	b := []byte(value)
	for len(b) > 0 && err == nil {
		var n int
		n, err = unix.Write(fd, b)
		switch {
		case err == unix.EINTR:
			err = nil
		case err == nil && n == 0:
			err = io.ErrShortWrite
		case err == nil:
			b = b[n:]
		}
	}
	if err != nil {
		err = &os.PathError{Op: "write", Path: p, Err: err}
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = &os.PathError{Op: "close", Path: p, Err: cerr}
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

func readFile(dir, name string) (string, error) {
	b, err := openat.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("read cgroup file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// openRaw opens p close-on-exec, retrying on EINTR, with os's error form.
func openRaw(p string, flags int) (int, error) {
	for {
		fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, nil
	}
}

func fileExists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// readUint reads a file holding one number; "max" reads as 0 with ok=false.
func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s/%s %q: %w", dir, name, s, err)
	}
	return v, nil
}

// readKeyValues parses "key value" lines (memory.stat, cpu.stat, cgroup.events).
func readKeyValues(dir, name string) (map[string]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	m := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	return m, nil
}

// isBusy reports the errors rmdir gives while tasks are still leaving.
func isBusy(err error) bool {
	return errors.Is(err, syscall.EBUSY)
}
