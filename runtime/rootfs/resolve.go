package rootfs

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/estiba/estiba/internal/openat"

	"golang.org/x/sys/unix"
)

// The rootfs belongs to the image, which may be hostile: any component of a
// mount target may be a symlink to "/etc" or "../../..", and a process of an
// earlier container sharing a volume may swap a directory for a symlink
// between our checks (CVE-2021-30465). So a path inside the rootfs is only
// ever resolved by the kernel, in one openat2(RESOLVE_IN_ROOT) call relative
// to a descriptor of the rootfs: symlinks are followed as if the rootfs were
// "/", ".." stops at it. The resulting descriptor is then the mount target
// itself (move_mount with MOVE_MOUNT_T_EMPTY_PATH), so no path is looked up
// twice.

const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openInRoot opens path (absolute or not, taken inside the root) relative to
// rootfd with flags (O_PATH unless told otherwise).
func openInRoot(rootfd int, path string, flags uint64) (int, error) {
	rel := relPath(path)
	fd, err := openat.Openat2(rootfd, rel, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: inRoot})
	if err != nil {
		return -1, &pathError{"open", path, err}
	}
	return fd, nil
}

// relPath cleans path as if "/" were the root and returns it without the
// leading slash ("." for the root itself).
func relPath(path string) string {
	rel := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	if rel == "" {
		return "."
	}
	return rel
}

// mkdirAllInRoot opens directory path inside the root, creating what is
// missing with mode 0755. Each missing component is created relative to the
// descriptor of its parent and opened with O_NOFOLLOW, so a component swapped
// for a symlink after its creation is refused, not followed.
func mkdirAllInRoot(rootfd int, path string) (int, error) {
	fd, err := openInRoot(rootfd, path, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	rel := relPath(path)
	parent, err := openInRoot(rootfd, ".", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, err
	}
	created := false
	comps := strings.Split(rel, "/")
	for i, c := range comps {
		var next int
		if !created {
			// Resolve the prefix as a whole: an existing component may be
			// a symlink whose target is meaningful only from the root.
			next, err = openInRoot(rootfd, strings.Join(comps[:i+1], "/"), unix.O_PATH|unix.O_DIRECTORY)
		}
		if created || errors.Is(err, unix.ENOENT) {
			if err = unix.Mkdirat(parent, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(parent)
				return -1, &pathError{"mkdir", "/" + strings.Join(comps[:i+1], "/"), err}
			}
			created = true
			next, err = unix.Openat(parent, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
				err = &pathError{"mkdir", "/" + strings.Join(comps[:i+1], "/"),
					errors.New("a symlink not resolving inside the rootfs is in the way")}
			} else if err != nil {
				err = &pathError{"open created directory", "/" + strings.Join(comps[:i+1], "/"), err}
			}
		}
		unix.Close(parent)
		if err != nil {
			return -1, err
		}
		parent = next
	}
	return parent, nil
}

// createFileInRoot opens file path inside the root, creating it (and its
// parent directories) when missing. A dangling symlink at path is refused:
// creating through it would create its target.
func createFileInRoot(rootfd int, path string) (int, error) {
	fd, err := openInRoot(rootfd, path, unix.O_PATH)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	dir, base := filepath.Split(filepath.Clean("/" + path))
	pfd, err := mkdirAllInRoot(rootfd, dir)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	fd, err = unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ELOOP) {
		return -1, &pathError{"create", path, errors.New("a symlink not resolving inside the rootfs is in the way")}
	}
	if err != nil {
		return -1, &pathError{"create", path, err}
	}
	return fd, nil
}

// pathError names a path inside the container.
type pathError struct {
	op   string
	path string
	err  error
}

func (e *pathError) Error() string {
	return fmt.Sprintf("%s %s (in rootfs): %v", e.op, e.path, e.err)
}

func (e *pathError) Unwrap() error { return e.err }
