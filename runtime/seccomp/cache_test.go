package seccomp

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCache: the same profile gets the same program; a change in any part
// of it (here: an argument value, the default errno) a new one, compiled
// from it; a nil cache compiles each time.
func TestCache(t *testing.T) {
	errno := uint(1)
	base := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{
			Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: &errno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}},
		}}}
	}
	var c Cache
	a, err := c.Compile(base())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := c.Compile(base()); err != nil || b != a {
		t.Fatalf("same profile: %p (%v), want the cached %p", b, err, a)
	}
	arg := base()
	arg.Syscalls[0].Args[0].Value = 9
	other := uint(2)
	errnoRet := base()
	errnoRet.DefaultErrnoRet = &other
	errnoRet.DefaultAction = specs.ActErrno
	for name, p := range map[string]*specs.LinuxSeccomp{"arg value": arg, "default errno": errnoRet} {
		got, err := c.Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got == a || got.String() != want.String() {
			t.Errorf("%s: got the cached program of another profile", name)
		}
	}
	if _, err := c.Compile(&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}); err == nil {
		t.Error("a bad profile compiled through the cache")
	}
	var none *Cache
	x, err := none.Compile(base())
	if err != nil {
		t.Fatal(err)
	}
	if y, _ := none.Compile(base()); x == y {
		t.Error("a nil cache returned the same program twice")
	}
}
