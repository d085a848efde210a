package imagesvc

import (
	"os"
	"testing"

	"github.com/estiba/estiba/engine"
	"github.com/estiba/estiba/internal/testutil"
	"golang.org/x/sys/unix"
)

func nsIno(t *testing.T, f *os.File) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestUsernsCache(t *testing.T) {
	testutil.RequiresRoot(t)
	var c usernsCache
	defer func() {
		for _, f := range c.fds {
			f.Close()
		}
	}()
	get := func(base uint32) uint64 {
		f, err := c.get(engine.IDRange{HostID: base, Size: 65536})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return nsIno(t, f)
	}
	first := get(1 << 20)
	for _, tc := range []struct {
		name string
		base uint32
		same bool
	}{
		{"same range: the same namespace", 1 << 20, true},
		{"another range: another namespace", 2 << 20, false},
	} {
		if got := get(tc.base); (got == first) != tc.same {
			t.Errorf("%s: inode %d, first %d", tc.name, got, first)
		}
	}
	// Bounded: the oldest goes, the cache never holds more.
	for i := range uint32(usernsCacheSize + 3) {
		get((10 + i) << 20)
	}
	if len(c.fds) != usernsCacheSize || len(c.order) != usernsCacheSize {
		t.Errorf("cache holds %d (%d in order), want %d", len(c.fds), len(c.order), usernsCacheSize)
	}
	if _, ok := c.fds[engine.IDRange{HostID: 1 << 20, Size: 65536}]; ok {
		t.Error("the oldest range is still cached")
	}
}
