package imagesvc

import (
	"errors"
	"os"
	"sync"
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

// A failed make is not kept: the next get makes it again. A get of a range
// that warm is making waits for it: one namespace is made.
func TestUsernsCacheWarm(t *testing.T) {
	var mu sync.Mutex
	made := 0
	count := func() int { mu.Lock(); defer mu.Unlock(); return made }
	c := usernsCache{newNS: func(engine.IDRange) (*os.File, error) {
		mu.Lock()
		made++
		mu.Unlock()
		return nil, errors.New("no namespace")
	}}
	ids := engine.IDRange{HostID: 1 << 20, Size: 65536}
	for i := range 2 {
		if _, err := c.get(ids); err == nil {
			t.Fatalf("get %d: no error from a failing make", i)
		}
	}
	if count() != 2 {
		t.Fatalf("made %d times for two gets, want 2 (a failure is not cached)", count())
	}

	made = 0
	started, release := make(chan struct{}, 2), make(chan struct{})
	c = usernsCache{newNS: func(engine.IDRange) (*os.File, error) {
		mu.Lock()
		made++
		mu.Unlock()
		started <- struct{}{}
		<-release
		return os.Open(os.DevNull)
	}}
	defer func() {
		for _, f := range c.fds {
			f.Close()
		}
	}()
	ids.HostID = 2 << 20
	c.warm(ids)
	<-started // the warm is making it
	got := make(chan error, 2)
	for range 2 {
		go func() {
			f, err := c.get(ids)
			if err == nil {
				f.Close()
			}
			got <- err
		}()
	}
	close(release)
	for range 2 {
		if err := <-got; err != nil {
			t.Fatal(err)
		}
	}
	if count() != 1 {
		t.Errorf("made %d namespaces for one range, want 1", count())
	}
}
