package initstub

import (
	"encoding/binary"
	"errors"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestBuilderErrors(t *testing.T) {
	var other Program
	foreign := other.Buffer(8)
	tests := []struct {
		name  string
		build func(p *Program)
		want  string
	}{
		{"slot out of range", func(p *Program) { p.Syscall("x", unix.SYS_GETPID, Slot(64)) }, "slot 64"},
		{"negative slot", func(p *Program) { p.Syscall("x", unix.SYS_GETPID, Slot(-1)) }, "slot -1"},
		{"out of range", func(p *Program) { p.Syscall("x", unix.SYS_GETPID).Out(64) }, "Out(64)"},
		{"out of a sendfd", func(p *Program) { p.SendFD("x", Int(1)).Out(1) }, "Out(1)"},
		{"allow 0", func(p *Program) { p.Syscall("x", unix.SYS_GETPID).Allow(0) }, "Allow(0)"},
		{"allow of a sendfd", func(p *Program) { p.SendFD("x", Int(1)).Allow(unix.EBADF) }, "Allow(9)"},
		{"7 args", func(p *Program) {
			p.Syscall("x", unix.SYS_GETPID, Int(1), Int(2), Int(3), Int(4), Int(5), Int(6), Int(7))
		}, "7 args"},
		{"syscall number", func(p *Program) { p.Syscall("x", 4096) }, "syscall number 4096"},
		{"another program's buffer", func(p *Program) { p.Syscall("x", unix.SYS_GETPID, foreign.Arg()) }, "another program"},
		{"negative buffer", func(p *Program) { p.Buffer(-1) }, "buffer of -1"},
		{"empty getcwd buffer", func(p *Program) { p.CheckCwd("x", p.Buffer(0)) }, "getcwd buffer of 0"},
		{"equal past a buffer", func(p *Program) { a := p.Buffer(8); p.Equal("x", a, 4, a, 0, 8) }, "ranges"},
		{"17 fds", func(p *Program) {
			for range MaxFDs + 1 {
				p.PassFD(1)
			}
		}, "more than 16"},
		{"negative fd", func(p *Program) { p.PassFD(-1) }, "PassFD(-1)"},
		{"too big", func(p *Program) { p.Syscall("x", unix.SYS_WRITE, Bytes(make([]byte, MaxSize))) }, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Program
			tt.build(&p)
			_, err := p.Encode()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Encode: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// The bytes of a small program, field by field (doc.go).
func TestEncodeLayout(t *testing.T) {
	var p Program
	p.Syscall("w", unix.SYS_WRITE, Signed(-100), Str("hi"), StrArray([]string{"a"})).Out(2).Allow(unix.ENOENT)
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	u32 := func(off int) uint32 { return le.Uint32(b[off:]) }
	u64 := func(off int) uint64 { return le.Uint64(b[off:]) }
	const dataOff = 16 + 128 + 8 // one op, one reloc, padded to 8
	// data: "w" at 0, "hi\0" at 8, "a\0" at 16, the array at 24.
	checks := []struct {
		what      string
		got, want uint64
	}{
		{"magic", uint64(u32(0)), 0x31495345},
		{"nops", uint64(u32(4)), 1},
		{"nrelocs", uint64(u32(8)), 1},
		{"kind", uint64(u32(16)), 1},
		{"flags", uint64(u32(20)), 3},
		{"name_off", uint64(u32(24)), 0},
		{"name_len", uint64(u32(28)), 1},
		{"out", uint64(u32(32)), 2},
		{"allow", uint64(u32(36)), 2},
		{"nr", u64(40), unix.SYS_WRITE},
		{"arg0 tag", uint64(u32(48)), 1},
		{"arg0 val", u64(56), uint64(1<<64 - 100)},
		{"arg1 tag", uint64(u32(64)), 2},
		{"arg1 len", uint64(u32(68)), 3},
		{"arg1 val", u64(72), 8},
		{"arg2 tag", uint64(u32(80)), 2},
		{"arg2 len", uint64(u32(84)), 16},
		{"arg2 val", u64(88), 24},
		{"arg3 tag", uint64(u32(96)), 0},
		{"reloc", uint64(u32(144)), 24},
		{"argv[0]", u64(dataOff + 24), 16},
		{"argv[1]", u64(dataOff + 32), 0},
		{"size", uint64(len(b)), dataOff + 40},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.what, c.got, c.want)
		}
	}
	if got := string(b[dataOff : dataOff+19]); got != "w\x00\x00\x00\x00\x00\x00\x00hi\x00\x00\x00\x00\x00\x00a\x00\x00" {
		t.Errorf("data %q", got)
	}
}

func TestStepError(t *testing.T) {
	err := error(&StepError{Index: 2, Name: "mount proc", Errno: syscall.EPERM})
	if got, want := err.Error(), "mount proc: operation not permitted"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, syscall.EPERM) {
		t.Error("not errors.Is EPERM")
	}
	inv := &StepError{Index: -1, Name: "program", Errno: syscall.EBADMSG, Invalid: true}
	if got := inv.Error(); !strings.Contains(got, "refused") {
		t.Errorf("Error() = %q", got)
	}
}
