package initstub

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// script turns fuzz bytes into builder calls; past the end it reads zeros.
type script struct{ b []byte }

func (s *script) byte() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *script) u64() uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(s.byte())
	}
	return v
}

func (s *script) bytes() []byte {
	n := int(s.byte() % 64)
	out := make([]byte, 0, n)
	for range n {
		out = append(out, s.byte())
	}
	return out
}

func (s *script) str() string { return string(bytes.ReplaceAll(s.bytes(), []byte{0}, []byte{1})) }

// want is what an op must decode to: the model the builder calls imply.
type wantOp struct {
	kind, flags, out, allow uint32
	nr                      uint64
	name                    string
	args                    []Arg
}

// build makes a program from s and the ops it must hold.
func build(s *script) (*Program, []wantOp) {
	p := &Program{}
	var want []wantOp
	var bufs []Buf
	arg := func() Arg {
		switch s.byte() % 6 {
		case 0:
			return Int(uintptr(s.u64()))
		case 1:
			return Str(s.str())
		case 2:
			return Bytes(s.bytes())
		case 3:
			ss := make([]string, s.byte()%8)
			for i := range ss {
				ss[i] = s.str()
			}
			return StrArray(ss)
		case 4:
			return Slot(int(s.byte() % NumSlots))
		}
		if len(bufs) == 0 {
			return Arg{}
		}
		return bufs[int(s.byte())%len(bufs)].Arg()
	}
	for len(s.b) > 0 && len(want) < 40 {
		name := s.str()
		switch s.byte() % 6 {
		case 0:
			w := wantOp{kind: kindSyscall, name: name, nr: uint64(s.byte()) | uint64(s.byte()&0xf)<<8}
			for range s.byte() % (nArgs + 1) {
				w.args = append(w.args, arg())
			}
			o := p.Syscall(name, uintptr(w.nr), w.args...)
			if c := s.byte(); c&1 != 0 {
				w.flags |= flagOut
				w.out = uint32(c>>1) % NumSlots
				o.Out(int(w.out))
			}
			if c := s.byte(); c&1 != 0 {
				w.flags |= flagAllow
				w.allow = 1 + uint32(c>>1)
				o.Allow(syscall.Errno(w.allow))
			}
			want = append(want, w)
		case 1:
			bufs = append(bufs, p.Buffer(int(s.byte())))
		case 2:
			fd := Slot(int(s.byte() % NumSlots))
			if s.byte()&1 == 0 {
				p.SendFD(name, fd)
				want = append(want, wantOp{kind: kindSendFD, name: name, args: []Arg{{}, fd}})
			} else {
				sock := Int(uintptr(s.byte()))
				p.SendFDOn(name, sock, fd)
				want = append(want, wantOp{kind: kindSendFD, name: name, args: []Arg{sock, fd}})
			}
		case 3:
			b := p.Buffer(1 + int(s.byte()))
			p.CheckCwd(name, b)
			want = append(want, wantOp{kind: kindCheckCwd, name: name, args: []Arg{b.Arg()}})
		case 4:
			a, b := p.Buffer(int(s.byte())), p.Buffer(int(s.byte()))
			n := min(a.n, b.n, int(s.byte()))
			aoff, boff := int(s.byte())%(a.n-n+1), int(s.byte())%(b.n-n+1)
			p.Equal(name, a, aoff, b, boff, n)
			want = append(want, wantOp{kind: kindEqual, name: name, args: []Arg{a.slice(aoff, n).Arg(), b.slice(boff, n).Arg()}})
		case 5:
			p.Reply()
			want = append(want, wantOp{kind: kindReply, name: "reply"})
		}
	}
	return p, want
}

// Encode's output decodes, as the stub reads it, to the ops that were built.
func FuzzEncodeRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x01a\x00\x27\x00\x03\x00\x00\x00\x00\x00\x00\x00\x01\x05\x01\x03"))
	f.Add([]byte("\x00\x01\x10\x02b\x04\x02\x01\x03\x02\x01\x00\x03\x01x\x00\x01\x01z\x02\x01\x01c\x03\x04"))
	f.Add([]byte("\x00\x04\x08\x08\x04\x01\x02\x00\x05\x00\x03\x06\x03\x02ab\x01\x00\x04\x07"))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, want := build(&script{in})
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		d, ref := decode(b, ^uint64(0))
		if ref != nil {
			t.Fatalf("the encoding is refused: %+v", *ref)
		}
		if len(d.ops) != len(want) {
			t.Fatalf("%d ops decoded, %d built", len(d.ops), len(want))
		}
		nstrs := 0
		for i, w := range want {
			if err := checkOp(d, d.ops[i], w); err != nil {
				t.Fatalf("op %d (%q): %v", i, w.name, err)
			}
			for _, a := range w.args {
				nstrs += len(a.strs)
			}
		}
		if len(d.relocs) != nstrs {
			t.Fatalf("%d relocs for %d strings", len(d.relocs), nstrs)
		}
	})
}

func checkOp(d *decoded, o decodedOp, w wantOp) error {
	if o.kind != w.kind || o.flags != w.flags || o.out != w.out || o.allow != w.allow || o.nr != w.nr || o.name != w.name {
		return fmt.Errorf("decoded %+v, want %+v", o, w)
	}
	for i, a := range o.args {
		var wa Arg
		if i < len(w.args) {
			wa = w.args[i]
		}
		if err := checkArg1(d, a, wa); err != nil {
			return fmt.Errorf("arg %d: %w", i, err)
		}
	}
	return nil
}

func checkArg1(d *decoded, a wireArg, w Arg) error {
	got := func() []byte { return d.data[a.val : a.val+uint64(a.len)] }
	switch w.kind {
	case argNone:
		if a != (wireArg{}) {
			return fmt.Errorf("%+v, want NONE", a)
		}
	case argInt, argSlot:
		tag := map[argKind]uint32{argInt: tagInt, argSlot: tagSlot}[w.kind]
		if a.tag != tag || a.val != w.val || a.len != 0 {
			return fmt.Errorf("%+v, want tag %d val %d", a, tag, w.val)
		}
	case argBytes:
		if a.tag != tagData || !bytes.Equal(got(), w.data) {
			return fmt.Errorf("%+v, want the bytes %q", a, w.data)
		}
	case argBuf:
		if a.tag != tagData || a.val != uint64(w.buf.off) || int(a.len) != w.buf.n || slices.ContainsFunc(got(), func(c byte) bool { return c != 0 }) {
			return fmt.Errorf("%+v, want the zeroed buffer %+v", a, w.buf)
		}
	case argStrArray:
		if a.tag != tagData || int(a.len) != 8*(len(w.strs)+1) {
			return fmt.Errorf("%+v, want an array of %d pointers", a, len(w.strs)+1)
		}
		return checkStrArray(d, a.val, w.strs)
	}
	return nil
}

func checkStrArray(d *decoded, at uint64, strs []string) error {
	le := binary.LittleEndian
	for i := range len(strs) + 1 {
		word := at + 8*uint64(i)
		relocated := slices.Contains(d.relocs, uint32(word))
		v := le.Uint64(d.data[word:])
		if i == len(strs) {
			if v != 0 || relocated {
				return errors.New("the array does not end in NULL")
			}
			return nil
		}
		if !relocated {
			return fmt.Errorf("pointer %d not relocated", i)
		}
		s, _, ok := bytes.Cut(d.data[v:], []byte{0})
		if !ok || string(s) != strs[i] {
			return fmt.Errorf("string %d: %q, want %q", i, s, strs[i])
		}
	}
	return nil
}

// defang makes every syscall of b a getpid, so that the stub may run
// whatever the fuzzer makes of a program; the rest stays as it is (SENDFD,
// CHECKCWD, EQUAL and REPLY harm nothing).
func defang(b []byte) []byte {
	b = slices.Clone(b)
	if len(b) < hdrSize {
		return b
	}
	le := binary.LittleEndian
	nops := int(le.Uint32(b[4:]))
	for i := 0; i < nops && hdrSize+opSize*(i+1) <= len(b); i++ {
		op := b[hdrSize+opSize*i:]
		if le.Uint32(op) == kindSyscall {
			le.PutUint64(op[24:], unix.SYS_GETPID)
		}
	}
	return b
}

// The stub refuses exactly what decode refuses, with the same op and errno,
// and never crashes.
func FuzzStubValidation(f *testing.F) {
	for _, in := range [][]byte{
		{},
		[]byte("\x01a\x00\x27\x00\x03\x00\x00\x00\x00\x00\x00\x00\x01\x05\x01\x03"),
		[]byte("\x00\x01\x10\x02b\x04\x02\x01\x03\x02\x01\x00\x03\x01x\x00\x01\x01z\x02\x01\x01c\x03\x04"),
	} {
		p, _ := build(&script{in})
		b, err := p.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("ESI1\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || len(b) > 64<<10 {
			// An empty message reads as EOF; a big one is not the point
			// (and past the socket's default buffer).
			return
		}
		b = defang(b)
		_, ref := decode(b, 0)
		s := startStub(t, stubOpts{dir: "/"})
		s.sendRaw(t, b)
		fds, err := WaitReply(s.sock, &Program{})
		closeAll(fds)
		var se *StepError
		isStep := errors.As(err, &se)
		switch {
		case ref != nil && !(isStep && se.Invalid && se.Index == ref.index && se.Errno == ref.errno):
			t.Fatalf("stub: %v; decode refuses at %d with %v", err, ref.index, ref.errno)
		case ref == nil && (err != nil && !isStep || isStep && se.Invalid):
			t.Fatalf("stub: %v; decode accepts", err)
		}
		s.sock.Close()
		s.exit(t) // fails the test on a signal

	})
}
