package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CheckNoCgroups registers a cleanup that fails t if, when the test ends, a
// cgroup directory whose name contains name remains in any hierarchy under
// root (/sys/fs/cgroup), searching a few levels deep. Give it a name unique
// to the test.
func CheckNoCgroups(t testing.TB, root, name string) {
	t.Helper()
	t.Cleanup(func() {
		for _, d := range FindCgroups(root, name, 4) {
			t.Errorf("cgroup leaked: %s", d)
		}
	})
}

// FindCgroups lists directories under root, at most depth levels down,
// whose base name contains name.
func FindCgroups(root, name string, depth int) []string {
	var found []string
	var walk func(dir string, level int)
	walk = func(dir string, level int) {
		if level > depth {
			return
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if strings.Contains(e.Name(), name) {
				found = append(found, p)
				continue
			}
			walk(p, level+1)
		}
	}
	walk(root, 0)
	return found
}
