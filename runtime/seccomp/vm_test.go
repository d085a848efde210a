package seccomp

import (
	"encoding/binary"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// call is one syscall as seccomp_data describes it.
type call struct {
	arch uint32
	nr   uint32
	args [6]uint64
}

// seccompData encodes c for x/net/bpf's VM. The VM loads words big-endian
// (network order) while the kernel's seccomp_data is native (little-endian)
// memory; the filter only loads aligned 32-bit words, so writing each word
// big-endian at its little-endian position gives the VM the same values
// the kernel's loads would.
func (c call) seccompData() []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[offNr:], c.nr)
	binary.BigEndian.PutUint32(b[offArch:], c.arch)
	for i, a := range c.args {
		binary.BigEndian.PutUint32(b[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[offArgs+8*i+4:], uint32(a>>32))
	}
	return b
}

// vm runs a compiled program.
type vm struct {
	t  testing.TB
	vm *bpf.VM
}

func newVM(t testing.TB, prog *Program) *vm {
	t.Helper()
	insns, ok := bpf.Disassemble(prog.Instructions)
	if !ok {
		t.Fatalf("program has undecodable instructions")
	}
	v, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("VM rejects the program: %v", err)
	}
	return &vm{t, v}
}

func (v *vm) run(c call) uint32 {
	v.t.Helper()
	r, err := v.vm.Run(c.seccompData())
	if err != nil {
		v.t.Fatalf("run %+v: %v", c, err)
	}
	return uint32(r)
}

func compile(t testing.TB, p *specs.LinuxSeccomp) *Program {
	t.Helper()
	prog, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return prog
}

func uintp(v uint) *uint { return &v }

// nr returns the x86_64 number of a syscall.
func nr(t testing.TB, name string) uint32 {
	t.Helper()
	n, ok := syscallsX86_64.lookup(name)
	if !ok {
		t.Fatalf("no syscall %s", name)
	}
	return n
}

func x64(n uint32, args ...uint64) call {
	c := call{arch: auditArchX86_64, nr: n}
	copy(c.args[:], args)
	return c
}
