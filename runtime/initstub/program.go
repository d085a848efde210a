package initstub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// The wire constants (doc.go).
const (
	magic    = 0x31495345 // "ESI1"
	hdrSize  = 16
	opSize   = 128
	nArgs    = 6
	noIndex  = 0xffffffff
	replyLen = 16

	// MaxSize is the largest program the stub receives.
	MaxSize = 1 << 20
	// NumSlots is the number of slots; they keep their values from one
	// program to the next.
	NumSlots = 64
	// MaxFDs is the number of fds a program can carry (PassFD), which
	// the stub stores in the slots from FDSlot on.
	MaxFDs = 16
	FDSlot = NumSlots - MaxFDs
)

const (
	kindSyscall uint32 = 1 + iota
	kindSendFD
	kindCheckCwd
	kindEqual
	kindReply
	kindSeccomp
)

const (
	flagOut   uint32 = 1
	flagAllow uint32 = 2
)

const (
	tagNone uint32 = iota
	tagInt
	tagData
	tagSlot
)

type argKind uint8

const (
	argNone argKind = iota
	argInt
	argBytes    // data copied into the program
	argStrArray // a char *[] and its strings, relocated by the stub
	argSlot
	argBuf
)

// Arg is an operand of an op: a literal, a pointer into the program's data
// (the stub's copy, writable), or the value of a slot. The zero Arg is the
// literal 0 (for SendFDOn: the sync socket).
type Arg struct {
	kind argKind
	val  uint64
	data []byte
	strs []string
	buf  Buf
}

// Int is the literal v.
func Int(v uintptr) Arg { return Arg{kind: argInt, val: uint64(v)} }

// Signed is the literal v sign-extended, for fds and AT_FDCWD.
func Signed(v int) Arg { return Arg{kind: argInt, val: uint64(int64(v))} }

// Str is a pointer to a NUL-terminated copy of s.
func Str(s string) Arg { return Arg{kind: argBytes, data: append([]byte(s), 0)} }

// Bytes is a pointer to a copy of b, which the stub may write (its writes stay
// in the stub; use a Buf to compare them with Equal).
func Bytes(b []byte) Arg { return Arg{kind: argBytes, data: append([]byte(nil), b...)} }

// StrArray is a pointer to a NULL-terminated char *[] of copies of ss (argv,
// envp). The encoder writes offsets in data; the stub turns them into
// pointers when it loads the program (the relocs of the wire format).
func StrArray(ss []string) Arg {
	return Arg{kind: argStrArray, strs: append([]string(nil), ss...)}
}

// Slot is the value that an earlier op stored with Out(k), in this program or
// an earlier one.
func Slot(k int) Arg { return Arg{kind: argSlot, val: uint64(k)} }

// PassFD sends fd with the program (SCM_RIGHTS; the caller keeps its
// own): the stub receives it close-on-exec, before the program's first op
// runs, in the slot returned, FDSlot for the first one passed and the next
// slots for the others. An op of the program (or of a later one) closes it
// in the stub where the process goes on.
func (p *Program) PassFD(fd int) Arg {
	if fd < 0 || len(p.fds) == MaxFDs {
		p.fail("PassFD(%d): a negative fd, or more than %d", fd, MaxFDs)
		return Slot(FDSlot)
	}
	p.fds = append(p.fds, fd)
	return Slot(FDSlot + len(p.fds) - 1)
}

// Buf is a zeroed writable area of a program's data, usable in several ops of
// that program (fstat results to compare, a getcwd buffer).
type Buf struct {
	p   *Program
	off int
	n   int
}

// Arg is a pointer to b.
func (b Buf) Arg() Arg { return Arg{kind: argBuf, buf: b} }

// Len is b's size.
func (b Buf) Len() int { return b.n }

type wireArg struct {
	tag, len uint32
	val      uint64
}

// Op is one step of a program.
type Op struct {
	p                *Program
	kind             uint32
	name             string
	nameOff, nameLen uint32
	flags            uint32
	out, allow       uint32
	nr               uint64
	args             [nArgs]wireArg
}

// Program is a list of ops and the data they point to. The builders do not
// return errors: the first one is kept and returned by Encode.
type Program struct {
	ops    []*Op
	data   []byte
	relocs []uint32
	fds    []int
	err    error
}

func (p *Program) fail(format string, a ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("initstub: "+format, a...)
	}
}

// alloc appends n zero bytes to data at a multiple of 8 (the kernel's
// structs there are naturally aligned) and returns their offset.
func (p *Program) alloc(n int) int {
	for len(p.data)%8 != 0 {
		p.data = append(p.data, 0)
	}
	off := len(p.data)
	p.data = append(p.data, make([]byte, n)...)
	return off
}

// Buffer is a new zeroed area of n bytes.
func (p *Program) Buffer(n int) Buf {
	if n < 0 {
		p.fail("buffer of %d bytes", n)
		n = 0
	}
	return Buf{p: p, off: p.alloc(n), n: n}
}

func (p *Program) put(b []byte) wireArg {
	off := p.alloc(len(b))
	copy(p.data[off:], b)
	return wireArg{tag: tagData, len: uint32(len(b)), val: uint64(off)}
}

func (p *Program) strArray(ss []string) wireArg {
	offs := make([]int, len(ss))
	for i, s := range ss {
		offs[i] = p.put(append([]byte(s), 0)).off()
	}
	size := 8 * (len(ss) + 1) // the last pointer stays NULL
	arr := p.alloc(size)
	for i, o := range offs {
		binary.LittleEndian.PutUint64(p.data[arr+8*i:], uint64(o))
		p.relocs = append(p.relocs, uint32(arr+8*i))
	}
	return wireArg{tag: tagData, len: uint32(size), val: uint64(arr)}
}

func (a wireArg) off() int { return int(a.val) }

func (p *Program) place(a Arg) wireArg {
	switch a.kind {
	case argInt:
		return wireArg{tag: tagInt, val: a.val}
	case argBytes:
		return p.put(a.data)
	case argStrArray:
		return p.strArray(a.strs)
	case argSlot:
		if a.val >= NumSlots {
			p.fail("slot %d out of range [0,%d)", int64(a.val), NumSlots)
		}
		return wireArg{tag: tagSlot, val: a.val}
	case argBuf:
		if a.buf.p != p {
			p.fail("a buffer of another program")
		}
		return wireArg{tag: tagData, len: uint32(a.buf.n), val: uint64(a.buf.off)}
	}
	return wireArg{}
}

func (p *Program) add(kind uint32, name string, nr uintptr, args ...Arg) *Op {
	o := &Op{p: p, kind: kind, name: name, nr: uint64(nr)}
	o.nameOff = uint32(p.put([]byte(name)).val)
	o.nameLen = uint32(len(name))
	if len(args) > nArgs {
		p.fail("%s: %d args, at most %d", name, len(args), nArgs)
		args = args[:nArgs]
	}
	for i, a := range args {
		o.args[i] = p.place(a)
	}
	p.ops = append(p.ops, o)
	return o
}

// Syscall is the raw syscall nr with args (missing ones are 0). Its failure,
// a result in [-4095,-1], fails the program unless allowed (Allow).
func (p *Program) Syscall(name string, nr uintptr, args ...Arg) *Op {
	if nr >= 4096 {
		p.fail("%s: syscall number %d", name, nr)
	}
	return p.add(kindSyscall, name, nr, args...)
}

// Out stores the op's result (or the allowed -errno) in slot k.
func (o *Op) Out(k int) *Op {
	if o.kind != kindSyscall || k < 0 || k >= NumSlots {
		o.p.fail("%s: Out(%d): only a syscall stores, in a slot of [0,%d)", o.name, k, NumSlots)
		return o
	}
	o.flags |= flagOut
	o.out = uint32(k)
	return o
}

// Allow makes a result of -errno no failure.
func (o *Op) Allow(errno syscall.Errno) *Op {
	if o.kind != kindSyscall || errno < 1 || errno > 4095 {
		o.p.fail("%s: Allow(%d): only a syscall allows an errno in [1,4095]", o.name, int(errno))
		return o
	}
	o.flags |= flagAllow
	o.allow = uint32(errno)
	return o
}

// SendFD sends fd to the runtime on the sync socket (Exchange and WaitReply
// return it).
func (p *Program) SendFD(name string, fd Arg) *Op {
	return p.add(kindSendFD, name, 0, Arg{}, fd)
}

// SendFDOn sends fd on the unix socket sock (the zero Arg: the sync socket).
func (p *Program) SendFDOn(name string, sock, fd Arg) *Op {
	return p.add(kindSendFD, name, 0, sock, fd)
}

// CheckCwd fails with ENOENT unless the stub's cwd is inside its root: getcwd
// into b must give a path from "/" (CVE-2024-21626: a cwd left outside reads
// "(unreachable)/...").
func (p *Program) CheckCwd(name string, b Buf) *Op {
	if b.n < 1 {
		p.fail("%s: a getcwd buffer of %d bytes", name, b.n)
	}
	return p.add(kindCheckCwd, name, 0, b.Arg())
}

// Equal fails with EXDEV unless the n bytes of a at aoff and of b at boff are
// equal (st_dev and st_ino of two fstat results).
func (p *Program) Equal(name string, a Buf, aoff int, b Buf, boff int, n int) *Op {
	ra, rb := a.slice(aoff, n), b.slice(boff, n)
	if ra.n != n || rb.n != n {
		p.fail("%s: ranges [%d,+%d) of %d and [%d,+%d) of %d bytes", name, aoff, n, a.n, boff, n, b.n)
	}
	return p.add(kindEqual, name, 0, ra.Arg(), rb.Arg())
}

// slice is b's range [off,off+n), empty if out of b.
func (b Buf) slice(off, n int) Buf {
	if off < 0 || n < 0 || off > b.n || n > b.n-off {
		return Buf{p: b.p, off: b.off}
	}
	return Buf{p: b.p, off: b.off + off, n: n}
}

// Seccomp loads the BPF filter (struct sock_filter[], 8 bytes each) with
// seccomp(SECCOMP_SET_MODE_FILTER, flags): its struct sock_fprog holds a
// pointer, which the stub makes.
func (p *Program) Seccomp(name string, flags uintptr, filter []byte) *Op {
	if len(filter) == 0 || len(filter)%8 != 0 || len(filter) > 4096*8 {
		p.fail("%s: a filter of %d bytes", name, len(filter))
	}
	return p.add(kindSeccomp, name, 0, Int(flags), Bytes(filter))
}

// Reply sends OK now and goes on: the runtime, which stops listening, cannot
// hear a later failure of this program; the stub writes it to its stderr and
// exits 127.
func (p *Program) Reply() {
	p.add(kindReply, "reply", 0)
}

// Encode returns p in the wire format.
func (p *Program) Encode() ([]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
	relocsEnd := hdrSize + opSize*len(p.ops) + 4*len(p.relocs)
	dataOff := (relocsEnd + 7) &^ 7
	size := dataOff + len(p.data)
	if size > MaxSize {
		return nil, fmt.Errorf("initstub: program of %d bytes, at most %d: %w", size, MaxSize, errTooBig)
	}
	b := make([]byte, size)
	le := binary.LittleEndian
	le.PutUint32(b[0:], magic)
	le.PutUint32(b[4:], uint32(len(p.ops)))
	le.PutUint32(b[8:], uint32(len(p.relocs)))
	if len(p.fds) > 0 {
		le.PutUint32(b[12:], FDSlot)
	}
	for i, o := range p.ops {
		o.encode(b[hdrSize+opSize*i:])
	}
	for i, r := range p.relocs {
		le.PutUint32(b[hdrSize+opSize*len(p.ops)+4*i:], r)
	}
	copy(b[dataOff:], p.data)
	return b, nil
}

var errTooBig = errors.New("program too big")

func (o *Op) encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], o.kind)
	le.PutUint32(b[4:], o.flags)
	le.PutUint32(b[8:], o.nameOff)
	le.PutUint32(b[12:], o.nameLen)
	le.PutUint32(b[16:], o.out)
	le.PutUint32(b[20:], o.allow)
	le.PutUint64(b[24:], o.nr)
	for i, a := range o.args {
		at := b[32+16*i:]
		le.PutUint32(at[0:], a.tag)
		le.PutUint32(at[4:], a.len)
		le.PutUint64(at[8:], a.val)
	}
}

// opName is the name of op i, for errors.
func (p *Program) opName(i int) string {
	if p == nil || i < 0 || i >= len(p.ops) {
		return "program"
	}
	return p.ops[i].name
}
