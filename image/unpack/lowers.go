package unpack

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func (a *applier) checkLowers(dir string) error {
	if len(a.opts.Lowers) == 0 {
		return nil
	}
	return CheckLowers([]string{dir}, a.opts.Lowers)
}

// CheckLowers verifies that each directory a layer used without creating
// it (Result.ImplicitDirs) is a directory, not a symlink or file, in the
// merged view of the lower layers (topmost first). Overlayfs would hide a
// lower symlink behind the new directory, where Docker would have followed
// it: refusing keeps the two meanings from diverging.
func CheckLowers(dirs []string, lowers []string) error {
	roots := make([]int, 0, len(lowers))
	defer func() {
		for _, fd := range roots {
			unix.Close(fd)
		}
	}()
	for _, l := range lowers {
		fd, err := unix.Open(l, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open lower layer %s: %w", l, err)
		}
		roots = append(roots, fd)
	}
	for _, d := range dirs {
		if err := checkDir(d, roots); err != nil {
			return err
		}
	}
	return nil
}

// checkDir looks d up from the top lower down; the first layer holding the
// name decides, as in overlayfs.
func checkDir(d string, roots []int) error {
	for _, root := range roots {
		fd, err := openBeneath(root, d, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			// Missing, or under a non-directory / symlink ancestor which
			// the ancestor's own check covers: this lower adds nothing.
			continue
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("stat %q in lower layer: %w", d, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			return fmt.Errorf("parent %q is a symlink in a lower layer: %w", d, ErrUnsafe)
		case unix.S_IFDIR:
			return nil
		case unix.S_IFCHR:
			if st.Rdev == 0 {
				return nil // whited out: below does not count
			}
		}
		return fmt.Errorf("parent %q is not a directory in a lower layer: %w", d, ErrUnsafe)
	}
	return nil
}
