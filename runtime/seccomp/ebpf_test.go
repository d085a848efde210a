package seccomp

import (
	"testing"

	"golang.org/x/net/bpf"
)

// ebpfLen is the length of prog once the kernel has converted it to eBPF
// (bpf_convert_filter): three instructions of prologue; a ret is two (mov,
// exit); a conditional jump whose targets are both elsewhere is two (the
// jump and a ja), and one more when its constant has the top bit set (it
// is loaded into a register first: eBPF immediates are signed).
func ebpfLen(prog []bpf.RawInstruction) int {
	n := 3
	for _, ins := range prog {
		n++
		switch ins.Op & 0x07 {
		case 0x06: // BPF_RET
			n++
		case 0x05: // BPF_JMP
			if ins.Op&0xf0 == 0 { // BPF_JA
				break
			}
			if ins.Jt != 0 && ins.Jf != 0 {
				n++
			}
			if ins.Op&0x08 == 0 && int32(ins.K) < 0 { // BPF_K
				n++
			}
		}
	}
	return n
}

// TestDockerFilterOnePage: the kernel keeps each container's filter as
// eBPF in pages of its own (bpf_prog_alloc: vmalloc, a page at least),
// one page up to ~500 instructions (measured on 6.18: 8 KiB of vmalloc
// with its guard page, where 20 classic instructions more take 12 KiB).
// Docker's profile fits it, with a margin, thanks to the chains at the
// bottom of the search (see chain); a change that loses them costs every
// container a page.
func TestDockerFilterOnePage(t *testing.T) {
	for _, caps := range [][]string{dockerCaps, nil} {
		prog, err := Compile(dockerProfile(t, caps))
		if err != nil {
			t.Fatal(err)
		}
		if n := ebpfLen(prog.Instructions); n > 485 {
			t.Errorf("caps %v: Docker's profile is %d eBPF instructions (%d classic), want at most 485", caps, n, len(prog.Instructions))
		}
	}
}
