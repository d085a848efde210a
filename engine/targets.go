package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/estiba/estiba/engine/inroot"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ensureMountTargets creates, as host root, the mount points the spec
// needs inside the container's rootfs (as Docker does). With a user
// namespace the container's root is an unmapped stranger to the image's
// root-owned directories and could not create them itself. Every path is
// resolved inside the rootfs (RESOLVE_IN_ROOT): the image is hostile and
// its symlinks must not lead us out of it. What it creates belongs to
// owner (the container's root as a host id; 0 without a user namespace),
// as the image's own files do in its eyes.
func ensureMountTargets(rootfs string, mounts []specs.Mount, owner uint32) error {
	root, err := inroot.OpenRoot(rootfs)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer unix.Close(root)
	var done []string
	for _, m := range mounts {
		dest := strings.Trim(filepath.Clean("/"+m.Destination), "/")
		if dest == "" || dest == "." {
			continue
		}
		// A target under an earlier mount (/dev/pts under the /dev tmpfs,
		// /sys/fs/cgroup under sysfs, a volume inside a volume) is looked
		// up in that mount, not in the rootfs: making it here would only
		// add an inode to the container's layer that nothing sees. The
		// runtime makes it in the mounted filesystem.
		if under(dest, done) {
			continue
		}
		done = append(done, dest)
		isFile := false
		if m.Type == "bind" {
			if st, err := os.Stat(m.Source); err == nil && !st.IsDir() {
				isFile = true
			}
		}
		if err := inroot.Make(root, dest, isFile, int(owner)); err != nil {
			return fmt.Errorf("mount point %s: %w", m.Destination, err)
		}
	}
	return nil
}

// under reports whether dest lies beneath one of the mount points in mounted.
func under(dest string, mounted []string) bool {
	for _, m := range mounted {
		if strings.HasPrefix(dest, m+"/") {
			return true
		}
	}
	return false
}
