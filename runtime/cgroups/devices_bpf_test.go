package cgroups

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// runDeviceProgram interprets the small instruction subset deviceProgram
// emits, from its encoded form, so the rule semantics are tested without a
// kernel (the real tests then check the kernel agrees).
func runDeviceProgram(t *testing.T, insns []insn, typ, access, major, minor uint32) bool {
	t.Helper()
	ctx := [3]uint32{access<<16 | typ, major, minor}
	code := encode(insns)
	var reg [11]uint64
	for pc := 0; pc < len(code)/8; pc++ {
		c := code[8*pc:]
		op, dst, src := c[0], c[1]&0xf, c[1]>>4
		off := int16(binary.LittleEndian.Uint16(c[2:]))
		imm := int32(binary.LittleEndian.Uint32(c[4:]))
		switch op {
		case opLoadWord:
			if src != r1 || off%4 != 0 || off < 0 || off > 8 {
				t.Fatalf("instruction %d: load outside the context: %v", pc, insns[pc])
			}
			reg[dst] = uint64(ctx[off/4])
		case opAnd32Imm:
			reg[dst] = uint64(uint32(reg[dst]) & uint32(imm))
		case opRsh32Imm:
			reg[dst] = uint64(uint32(reg[dst]) >> imm)
		case opMov32Reg:
			reg[dst] = uint64(uint32(reg[src]))
		case opMov64Imm:
			reg[dst] = uint64(int64(imm))
		case opExit:
			return reg[r0] == 1
		case opJneImm, opJneReg:
			other := uint64(int64(imm))
			if op == opJneReg {
				other = reg[src]
			}
			if reg[dst] != other {
				if off < 0 || pc+1+int(off) >= len(insns) {
					t.Fatalf("instruction %d: jump out of the program: %v", pc, insns[pc])
				}
				pc += int(off)
			}
		default:
			t.Fatalf("instruction %d not modelled: %v", pc, insns[pc])
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
