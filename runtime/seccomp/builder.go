package seccomp

import "golang.org/x/net/bpf"

// builder emits a classic BPF program backwards, from its last instruction
// to its first. Classic BPF only jumps forwards, so every jump target is
// already emitted when the jump is, and its distance is known: no fix-up
// pass. A conditional jump reaches at most 255 instructions (jt and jf are
// 8-bit); a farther target gets a trampoline, an unconditional JA (32-bit
// offset) placed right after the jump.
type builder struct {
	rev  []bpf.RawInstruction // the program, last instruction first
	rets map[uint32]label     // the nearest ret of each value, for reuse
}

// label names an emitted instruction: its index in rev.
type label int

func newBuilder() *builder { return &builder{rets: map[uint32]label{}} }

// head is the label of the instruction emitted last: the one that runs
// next when the instruction emitted after it falls through.
func (b *builder) head() label { return label(len(b.rev) - 1) }

func (b *builder) emit(ins bpf.RawInstruction) label {
	b.rev = append(b.rev, ins)
	return b.head()
}

// skip is the jump offset from a new instruction to l.
func (b *builder) skip(l label) int { return len(b.rev) - int(l) - 1 }

// ret returns a label of "ret v", reusing one within a short jump's reach.
func (b *builder) ret(v uint32) label {
	if l, ok := b.rets[v]; ok && b.skip(l) < 200 {
		return l
	}
	l := b.emit(bpf.RawInstruction{Op: opRet, K: v})
	b.rets[v] = l
	return l
}

// load emits "ld [off]" of seccomp_data.
func (b *builder) load(off uint32) label {
	return b.emit(bpf.RawInstruction{Op: opLdAbsW, K: off})
}

// and emits "and #k".
func (b *builder) and(k uint32) label {
	return b.emit(bpf.RawInstruction{Op: opAndK, K: k})
}

// jump emits "ja l", or nothing if l runs next anyway.
func (b *builder) jump(l label) label {
	if l == b.head() {
		return l
	}
	return b.emit(bpf.RawInstruction{Op: opJa, K: uint32(b.skip(l))})
}

// Classic BPF opcodes (include/uapi/linux/filter.h and bpf_common.h); x/net/bpf
// does not export them.
const (
	opLdAbsW = 0x00 | 0x00 | 0x20 // BPF_LD | BPF_W | BPF_ABS
	opAndK   = 0x04 | 0x50 | 0x00 // BPF_ALU | BPF_AND | BPF_K
	opJa     = 0x05 | 0x00        // BPF_JMP | BPF_JA
	jeq      = 0x05 | 0x10 | 0x00 // BPF_JMP | BPF_JEQ | BPF_K
	jgt      = 0x05 | 0x20 | 0x00 // BPF_JMP | BPF_JGT | BPF_K
	jge      = 0x05 | 0x30 | 0x00 // BPF_JMP | BPF_JGE | BPF_K
	opRet    = 0x06 | 0x00        // BPF_RET | BPF_K
)

// cond emits "if A op k goto jt else goto jf", with trampolines for targets
// out of reach.
func (b *builder) cond(op uint16, k uint32, jt, jf label) label {
	if jt == jf {
		return b.jump(jt)
	}
	if b.skip(jf) > 255 {
		jf = b.emit(bpf.RawInstruction{Op: opJa, K: uint32(b.skip(jf))})
	}
	if b.skip(jt) > 255 {
		jt = b.emit(bpf.RawInstruction{Op: opJa, K: uint32(b.skip(jt))})
	}
	return b.emit(bpf.RawInstruction{Op: op, Jt: uint8(b.skip(jt)), Jf: uint8(b.skip(jf)), K: k})
}

// program returns the instructions in execution order.
func (b *builder) program() []bpf.RawInstruction {
	out := make([]bpf.RawInstruction, len(b.rev))
	for i, ins := range b.rev {
		out[len(out)-1-i] = ins
	}
	return out
}
