package cgroups

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// runDeviceProgram interprets the small instruction subset deviceProgram
// emits, so the rule semantics are tested without a kernel (the real tests
// then check the kernel agrees).
func runDeviceProgram(t *testing.T, insns asm.Instructions, typ, access, major, minor uint32) bool {
	t.Helper()
	ctx := [3]uint32{access<<16 | typ, major, minor}
	labels := map[string]int{}
	for i, ins := range insns {
		if s := ins.Symbol(); s != "" {
			labels[s] = i
		}
	}
	var reg [11]uint64
	for pc := 0; pc < len(insns); pc++ {
		ins := insns[pc]
		op := ins.OpCode
		switch {
		case op == asm.LoadMemOp(asm.Word) && ins.Src == asm.R1:
			reg[ins.Dst] = uint64(ctx[ins.Offset/4])
		case op.Class() == asm.ALUClass && op.ALUOp() == asm.And && op.Source() == asm.ImmSource:
			reg[ins.Dst] = uint64(uint32(reg[ins.Dst]) & uint32(ins.Constant))
		case op.Class() == asm.ALUClass && op.ALUOp() == asm.RSh && op.Source() == asm.ImmSource:
			reg[ins.Dst] = uint64(uint32(reg[ins.Dst]) >> ins.Constant)
		case op.Class() == asm.ALUClass && op.ALUOp() == asm.Mov && op.Source() == asm.RegSource:
			reg[ins.Dst] = uint64(uint32(reg[ins.Src]))
		case op.Class() == asm.ALU64Class && op.ALUOp() == asm.Mov && op.Source() == asm.ImmSource:
			reg[ins.Dst] = uint64(ins.Constant)
		case op.Class() == asm.JumpClass && op.JumpOp() == asm.Exit:
			return reg[asm.R0] == 1
		case op.Class() == asm.JumpClass && op.JumpOp() == asm.JNE:
			other := uint64(ins.Constant)
			if op.Source() == asm.RegSource {
				other = reg[ins.Src]
			}
			if reg[ins.Dst] != other {
				target, ok := labels[ins.Reference()]
				if !ok {
					t.Fatalf("jump to unknown label %q", ins.Reference())
				}
				pc = target - 1
			}
		default:
			t.Fatalf("instruction %d not modelled: %v", pc, ins)
		}
	}
	t.Fatal("program ran off its end")
	return false
}

func TestDeviceProgramSemantics(t *testing.T) {
	n := func(v int64) int64 { return v }
	rule := func(allow bool, typ byte, maj, min int64, acc string) deviceRule {
		return deviceRule{allow: allow, typ: typ, major: maj, minor: min, access: acc}
	}
	denyAll := rule(false, 'a', -1, -1, "rwm")
	allowAll := rule(true, 'a', -1, -1, "rwm")
	type req struct {
		typ          uint32
		acc          string
		major, minor uint32
		want         bool
	}
	for _, tc := range []struct {
		name  string
		rules []deviceRule
		reqs  []req
	}{
		{"no rules deny", nil, []req{{bpfDevChar, "r", 1, 3, false}}},
		{"allow null only", []deviceRule{denyAll, rule(true, 'c', 1, 3, "rwm")}, []req{
			{bpfDevChar, "rw", 1, 3, true}, {bpfDevChar, "r", 1, 5, false}, {bpfDevBlock, "r", 1, 3, false},
		}},
		{"access subset", []deviceRule{denyAll, rule(true, 'c', 1, 5, "r")}, []req{
			{bpfDevChar, "r", 1, 5, true}, {bpfDevChar, "w", 1, 5, false}, {bpfDevChar, "rw", 1, 5, false},
		}},
		{"wildcard numbers", []deviceRule{denyAll, rule(true, 'c', 136, -1, "rwm"), rule(true, 'b', -1, n(0), "m")}, []req{
			{bpfDevChar, "rw", 136, 7, true}, {bpfDevChar, "rw", 137, 7, false}, {bpfDevBlock, "m", 8, 0, true}, {bpfDevBlock, "r", 8, 0, false},
		}},
		{"last match wins", []deviceRule{denyAll, rule(true, 'c', 1, 5, "rwm"), rule(false, 'c', 1, 5, "rwm")}, []req{
			{bpfDevChar, "r", 1, 5, false},
		}},
		{"later allow overrides deny", []deviceRule{denyAll, rule(false, 'c', 1, 5, "rwm"), rule(true, 'c', 1, 5, "rwm")}, []req{
			{bpfDevChar, "r", 1, 5, true},
		}},
		{"allow all minus one", []deviceRule{allowAll, rule(false, 'c', 1, 5, "w")}, []req{
			{bpfDevChar, "w", 1, 5, false}, {bpfDevChar, "r", 1, 5, true}, {bpfDevBlock, "rwm", 8, 0, true},
			// runc's semantics: a deny of "w" does not match a request for "rw".
			{bpfDevChar, "rw", 1, 5, true},
		}},
		{"wildcard resets earlier rules", []deviceRule{rule(true, 'c', 1, 3, "rwm"), denyAll}, []req{{bpfDevChar, "r", 1, 3, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			insns, err := deviceProgram(tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.reqs {
				if got := runDeviceProgram(t, insns, r.typ, uint32(accessBits(r.acc)), r.major, r.minor); got != r.want {
					t.Errorf("type %d %s %d:%d: allowed=%v, want %v\n%v", r.typ, r.acc, r.major, r.minor, got, r.want, fmt.Sprint(insns))
				}
			}
		})
	}
}
