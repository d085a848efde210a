package cgroups

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"unsafe"

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

// An eBPF instruction (struct bpf_insn), built by hand: the program is a few
// loads, compares and returns, and a BPF library would add a large package
// tree, and its start-up cost, to every run of the runtime binary.
type insn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
}

// Opcodes deviceProgram uses (linux/bpf.h, bpf_common.h).
const (
	opLoadWord = 0x61 // BPF_LDX | BPF_MEM | BPF_W
	opAnd32Imm = 0x54 // BPF_ALU | BPF_AND | BPF_K
	opRsh32Imm = 0x74 // BPF_ALU | BPF_RSH | BPF_K
	opMov32Reg = 0xbc // BPF_ALU | BPF_MOV | BPF_X
	opMov64Imm = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K
	opJneImm   = 0x55 // BPF_JMP | BPF_JNE | BPF_K
	opJneReg   = 0x5d // BPF_JMP | BPF_JNE | BPF_X
	opExit     = 0x95 // BPF_JMP | BPF_EXIT
)

// Registers: R0 the verdict, R1 the context, R2-R5 as deviceProgram says.
const (
	r0 = iota
	r1
	r2
	r3
	r4
	r5
)

func (i insn) String() string {
	return fmt.Sprintf("{%#02x dst=r%d src=r%d off=%d imm=%d}", i.op, i.dst, i.src, i.off, i.imm)
}

// deviceProgram compiles rules, where the last matching rule wins and no
// match means deny, into a device program: the rules after the last
// wildcard are checked last-first, each returning its verdict on a match,
// and the default comes at the end. Registers: R2 type, R3 access, R4
// major, R5 minor.
func deviceProgram(rules []deviceRule) ([]insn, error) {
	defAllow, rest := effectiveRules(rules)
	insns := []insn{
		{op: opLoadWord, dst: r2, src: r1, off: 0},
		{op: opAnd32Imm, dst: r2, imm: 0xFFFF},
		{op: opLoadWord, dst: r3, src: r1, off: 0},
		{op: opRsh32Imm, dst: r3, imm: 16},
		{op: opLoadWord, dst: r4, src: r1, off: 4},
		{op: opLoadWord, dst: r5, src: r1, off: 8},
	}
	for i := len(rest) - 1; i >= 0; i-- {
		block, err := ruleBlock(rest[i])
		if err != nil {
			return nil, err
		}
		insns = append(insns, block...)
	}
	return append(insns, insn{op: opMov64Imm, dst: r0, imm: verdict(defAllow)}, insn{op: opExit}), nil
}

// ruleBlock checks one rule; on a mismatch it jumps past its own end, to
// the next rule's block (or the default). Every rule that reaches here has
// at least one condition (effectiveRules removed the unconditional
// wildcards), so no block is unreachable code, which the verifier would
// reject.
func ruleBlock(r deviceRule) ([]insn, error) {
	var b []insn
	switch r.typ {
	case 'b':
		b = append(b, insn{op: opJneImm, dst: r2, imm: bpfDevBlock})
	case 'c':
		b = append(b, insn{op: opJneImm, dst: r2, imm: bpfDevChar})
	}
	if r.access != "rwm" {
		// The rule matches only if it covers every access requested:
		// (requested & rule) == requested.
		b = append(b,
			insn{op: opMov32Reg, dst: r1, src: r3},
			insn{op: opAnd32Imm, dst: r1, imm: accessBits(r.access)},
			insn{op: opJneReg, dst: r1, src: r3})
	}
	for _, n := range []struct {
		v   int64
		reg uint8
	}{{r.major, r4}, {r.minor, r5}} {
		if n.v < 0 {
			continue
		}
		if n.v > math.MaxInt32 {
			return nil, fmt.Errorf("device number %d too large", n.v)
		}
		b = append(b, insn{op: opJneImm, dst: n.reg, imm: int32(n.v)})
	}
	b = append(b, insn{op: opMov64Imm, dst: r0, imm: verdict(r.allow)}, insn{op: opExit})
	// Every jump goes to the instruction after the block's exit; offsets
	// count from the instruction after the jump.
	for i := range b {
		if b[i].op == opJneImm || b[i].op == opJneReg {
			b[i].off = int16(len(b) - i - 1)
		}
	}
	return b, nil
}

// encode lays the program out as the kernel reads it (little-endian
// struct bpf_insn: code, dst_reg:4 | src_reg:4, s16 off, s32 imm).
func encode(insns []insn) []byte {
	out := make([]byte, 8*len(insns))
	for i, in := range insns {
		o := out[8*i:]
		o[0] = in.op
		o[1] = in.dst&0xf | in.src<<4
		binary.LittleEndian.PutUint16(o[2:], uint16(in.off))
		binary.LittleEndian.PutUint32(o[4:], uint32(in.imm))
	}
	return out
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
	cg, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("device program: open cgroup: %w", err)
	}
	defer unix.Close(cg)
	old, err := queryDevicePrograms(cg)
	if err != nil {
		return fmt.Errorf("device program: %w", err)
	}
	prog, err := loadDeviceProgram(insns)
	if err != nil {
		return fmt.Errorf("device program: load: %w", err)
	}
	defer unix.Close(prog) // the attachment keeps it alive
	if err := attachDetach(unix.BPF_PROG_ATTACH, cg, prog, unix.BPF_F_ALLOW_MULTI); err != nil {
		return fmt.Errorf("device program: attach to %s: %w", dir, err)
	}
	var errs []error
	for _, id := range old {
		errs = append(errs, detachProgram(cg, id))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("device program: new one attached, but an old one stays (access is the stricter of both): %w", err)
	}
	return nil
}

// bpf calls bpf(2) with attr, a pointer to the command's part of union
// bpf_attr, and size its size.
func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	runtime.KeepAlive(attr)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// loadRetries bounds the loads again after EAGAIN (see loadDeviceProgram).
const loadRetries = 10

// loadDeviceProgram loads insns as a BPF_PROG_TYPE_CGROUP_DEVICE program and
// returns its fd. On a verifier rejection the error carries its log.
func loadDeviceProgram(insns []insn) (int, error) {
	code := encode(insns)
	license := []byte("Apache\x00")
	log := make([]byte, 64<<10)
	attr := struct {
		progType, insnCnt  uint32
		insns, license     uint64
		logLevel, logSize  uint32
		logBuf             uint64
		kernVersion, flags uint32
		name               [16]byte
		ifindex, expected  uint32
	}{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE, insnCnt: uint32(len(insns)),
		insns:   uint64(uintptr(unsafe.Pointer(&code[0]))),
		license: uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.name[:], "estiba_devices")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	// The verifier gives up with EAGAIN when a signal is pending, and Go
	// signals its threads (SIGURG, to preempt a goroutine): seen in the v2
	// VM, whose emulated CPU makes the verifier slow. libbpf retries too.
	for i := 0; i < loadRetries && (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR)); i++ {
		fd, err = bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	}
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL) {
		// Load again with the verifier's log, for the error only.
		attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
		if _, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err2 != nil {
			if n := bytes.IndexByte(log, 0); n > 0 {
				err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(log[:n]))
			}
		}
	}
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(log)
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// attachDetach runs BPF_PROG_ATTACH or BPF_PROG_DETACH of prog on the
// cgroup fd target, as a device program.
func attachDetach(cmd, target, prog int, flags uint32) error {
	attr := struct {
		target, prog, attachType, flags, replace uint32
		_                                        uint32
	}{target: uint32(target), prog: uint32(prog), attachType: unix.BPF_CGROUP_DEVICE, flags: flags}
	_, err := bpf(cmd, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// queryDevicePrograms returns the ids of the device programs attached
// directly to the cgroup fd target.
func queryDevicePrograms(target int) ([]uint32, error) {
	ids := make([]uint32, 64)
	for {
		attr := struct {
			target, attachType, queryFlags, attachFlags uint32
			ids                                         uint64
			count, _                                    uint32
		}{target: uint32(target), attachType: unix.BPF_CGROUP_DEVICE,
			ids: uint64(uintptr(unsafe.Pointer(&ids[0]))), count: uint32(len(ids))}
		_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
		runtime.KeepAlive(ids)
		if errors.Is(err, unix.ENOSPC) && int(attr.count) > len(ids) {
			ids = make([]uint32, attr.count)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("query attached programs: %w", err)
		}
		return ids[:attr.count], nil
	}
}

func detachProgram(target int, id uint32) error {
	attr := struct{ id, next, flags uint32 }{id: id}
	p, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // detached meanwhile
		}
		return fmt.Errorf("open program %d: %w", id, err)
	}
	defer unix.Close(p)
	if err := attachDetach(unix.BPF_PROG_DETACH, target, p, 0); err != nil {
		return fmt.Errorf("detach program %d: %w", id, err)
	}
	return nil
}
