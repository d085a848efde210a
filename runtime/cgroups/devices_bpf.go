package cgroups

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// cgroup v2 has no devices controller: device access is decided by
// BPF_PROG_TYPE_CGROUP_DEVICE programs attached to the cgroup. The kernel
// runs them with a struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
// u32 minor; }, access_type = access << 16 | type, and allows the access
// only if every attached program (and every ancestor's) returns 1.
const (
	bpfDevBlock = 1 // BPF_DEVCG_DEV_BLOCK
	bpfDevChar  = 2 // BPF_DEVCG_DEV_CHAR
	bpfAccMknod = 1 // BPF_DEVCG_ACC_MKNOD
	bpfAccRead  = 2 // BPF_DEVCG_ACC_READ
	bpfAccWrite = 4 // BPF_DEVCG_ACC_WRITE
)

// deviceProgram compiles rules, where the last matching rule wins and no
// match means deny, into a device program: the rules after the last
// wildcard are checked last-first, each returning its verdict on a match,
// and the default comes at the end. Registers: R2 type, R3 access, R4
// major, R5 minor.
func deviceProgram(rules []deviceRule) (asm.Instructions, error) {
	defAllow, rest := effectiveRules(rules)
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.And.Imm32(asm.R2, 0xFFFF),
		asm.LoadMem(asm.R3, asm.R1, 0, asm.Word),
		asm.RSh.Imm32(asm.R3, 16),
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word),
	}
	pending := "" // label the next block's first instruction must carry
	for i := len(rest) - 1; i >= 0; i-- {
		block, err := ruleBlock(rest[i], "rule"+strconv.Itoa(i)+"_next")
		if err != nil {
			return nil, err
		}
		if pending != "" {
			block[0] = block[0].WithSymbol(pending)
		}
		pending = "rule" + strconv.Itoa(i) + "_next"
		insns = append(insns, block...)
	}
	last := asm.Mov.Imm(asm.R0, verdict(defAllow))
	if pending != "" {
		last = last.WithSymbol(pending)
	}
	return append(insns, last, asm.Return()), nil
}

// ruleBlock checks one rule, jumping to next on a mismatch. Every rule that
// reaches here has at least one condition (effectiveRules removed the
// unconditional wildcards), so no block is unreachable code, which the
// verifier would reject.
func ruleBlock(r deviceRule, next string) (asm.Instructions, error) {
	var b asm.Instructions
	switch r.typ {
	case 'b':
		b = append(b, asm.JNE.Imm(asm.R2, bpfDevBlock, next))
	case 'c':
		b = append(b, asm.JNE.Imm(asm.R2, bpfDevChar, next))
	}
	if r.access != "rwm" {
		// The rule matches only if it covers every access requested:
		// (requested & rule) == requested.
		b = append(b,
			asm.Mov.Reg32(asm.R1, asm.R3),
			asm.And.Imm32(asm.R1, accessBits(r.access)),
			asm.JNE.Reg(asm.R1, asm.R3, next))
	}
	for _, n := range []struct {
		v   int64
		reg asm.Register
	}{{r.major, asm.R4}, {r.minor, asm.R5}} {
		if n.v < 0 {
			continue
		}
		if n.v > math.MaxInt32 {
			return nil, fmt.Errorf("device number %d too large", n.v)
		}
		b = append(b, asm.JNE.Imm(n.reg, int32(n.v), next))
	}
	return append(b, asm.Mov.Imm(asm.R0, verdict(r.allow)), asm.Return()), nil
}

func accessBits(access string) int32 {
	var bits int32
	for _, c := range access {
		switch c {
		case 'r':
			bits |= bpfAccRead
		case 'w':
			bits |= bpfAccWrite
		case 'm':
			bits |= bpfAccMknod
		}
	}
	return bits
}

func verdict(allow bool) int32 {
	if allow {
		return 1
	}
	return 0
}

// setDevicesBPF loads the program for rules and attaches it to the cgroup
// at dir, then detaches the programs attached there before. Attaching first
// with BPF_F_ALLOW_MULTI means both old and new run during the swap, and an
// access must pass both: the cgroup is never left without a filter, only
// briefly under the stricter of the two.
func setDevicesBPF(dir string, rules []deviceRule) error {
	insns, err := deviceProgram(rules)
	if err != nil {
		return err
	}
	cg, err := os.OpenFile(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("device program: open cgroup: %w", err)
	}
	defer cg.Close()
	target := int(cg.Fd())
	old, err := link.QueryPrograms(link.QueryOptions{Target: target, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("device program: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "estiba_devices", Type: ebpf.CGroupDevice, License: "Apache", Instructions: insns,
	})
	if err != nil {
		return fmt.Errorf("device program: load: %w", err)
	}
	defer prog.Close() // the attachment keeps it alive
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target: target, Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI,
	})
	if err != nil {
		return fmt.Errorf("device program: attach to %s: %w", dir, err)
	}
	var errs []error
	for _, ap := range old.Programs {
		errs = append(errs, detachProgram(target, ap.ID))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("device program: new one attached, but an old one stays (access is the stricter of both): %w", err)
	}
	return nil
}

func detachProgram(target int, id ebpf.ProgramID) error {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // detached meanwhile
		}
		return fmt.Errorf("open program %d: %w", id, err)
	}
	defer p.Close()
	err = link.RawDetachProgram(link.RawDetachProgramOptions{Target: target, Program: p, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("detach program %d: %w", id, err)
	}
	return nil
}
