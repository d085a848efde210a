package cgroups

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// EngineParent is the cgroup under which the engine places its containers
// (their cgroupsPath). It stays while the daemon runs, as Docker's
// "docker" does: made and removed with each container, it would cost every
// run --rm a mkdir and an rmdir in each hierarchy. The daemon removes it
// when it stops, if it is empty (RemoveEmpty).
const EngineParent = "/estiba"

// innerPath turns a Config into the cgroup path to use inside each hierarchy:
// absolute (from the hierarchy's root) or relative (to the runtime's own
// cgroup), already cleaned and checked not to climb out.
func innerPath(cfg Config) (string, error) {
	p := cfg.Path
	if p == "" {
		if cfg.ID == "" || strings.Contains(cfg.ID, "/") || cfg.ID == "." || cfg.ID == ".." {
			return "", fmt.Errorf("cgroup path for container ID %q: ID must be a non-empty single path element", cfg.ID)
		}
		// Absolute, so that every runtime process derives the same path,
		// and with no parent of ours to make and remove (crun does the
		// same; runc's is relative to its own cgroup).
		return "/" + cfg.ID, nil
	}
	if !strings.HasPrefix(p, "/") && strings.Count(p, ":") == 2 {
		return "", fmt.Errorf("cgroupsPath %q looks like systemd's slice:prefix:name: the systemd cgroup driver is not supported (give a path)", p)
	}
	clean := path.Clean(p)
	if strings.HasPrefix(p, "/") {
		if clean == "/" {
			return "", fmt.Errorf("cgroupsPath %q: the root cgroup cannot hold a container", p)
		}
		return clean, nil
	}
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("cgroupsPath %q: a relative path must stay below the runtime's own cgroup", p)
	}
	return clean, nil
}

// dirIn is the directory of cgroup inner in hierarchy h.
func dirIn(h hierarchy, inner string) string {
	if strings.HasPrefix(inner, "/") {
		return filepath.Join(h.mount, inner)
	}
	own := h.own
	// Inside a cgroup namespace or a bind-mounted sub-tree the mount shows a
	// sub-cgroup as its root; /proc/self/cgroup paths then include it.
	if h.root != "/" && (own == h.root || strings.HasPrefix(own, h.root+"/")) {
		own = strings.TrimPrefix(own, h.root)
	}
	return filepath.Join(h.mount, own, inner)
}
