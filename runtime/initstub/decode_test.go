package initstub

import (
	"encoding/binary"
	"slices"

	"golang.org/x/sys/unix"
)

// decode is the stub's reading and checking of a program (load in stub.c),
// written again in Go from the wire format: the tests hold the encoder and
// the stub to it. slotsSet is the stub's set of stored slots before it.
type decoded struct {
	ops    []decodedOp
	relocs []uint32 // offsets in data, checked
	data   []byte   // before relocation
}

type decodedOp struct {
	kind, flags, out, allow uint32
	nr                      uint64
	name                    string
	args                    [nArgs]wireArg
}

// refusal is an INVALID reply: the op (-1: the program) and why.
type refusal struct {
	index int
	errno unix.Errno
}

func decode(b []byte, slotsSet uint64) (*decoded, *refusal) {
	le := binary.LittleEndian
	whole := func(e unix.Errno) *refusal { return &refusal{-1, e} }
	if len(b) > MaxSize {
		return nil, whole(unix.EMSGSIZE)
	}
	if len(b) < hdrSize || le.Uint32(b) != magic {
		return nil, whole(unix.EBADMSG)
	}
	// No fds come with the messages decoded here.
	if le.Uint32(b[12:]) != 0 {
		return nil, whole(unix.EBADSLT)
	}
	nops, nrelocs := uint64(le.Uint32(b[4:])), uint64(le.Uint32(b[8:]))
	opsEnd := hdrSize + nops*opSize
	relocsEnd := opsEnd + 4*nrelocs
	dataOff := (relocsEnd + 7) &^ 7
	if dataOff > uint64(len(b)) {
		return nil, whole(unix.EBADMSG)
	}
	d := &decoded{data: b[dataOff:]}
	for i := range int(nops) {
		o, errno := decodeOp(b[hdrSize+opSize*i:], d.data, &slotsSet)
		if errno != 0 {
			return nil, &refusal{i, errno}
		}
		d.ops = append(d.ops, o)
	}
	for i := range int(nrelocs) {
		r := le.Uint32(b[opsEnd+4*uint64(i):])
		// A word relocated already holds an address, no offset: the
		// stub's check refuses it as out of data.
		if r%8 != 0 || !inData(d.data, uint64(r), 8) || le.Uint64(d.data[r:]) >= uint64(len(d.data)) || slices.Contains(d.relocs, r) {
			return nil, whole(unix.ERANGE)
		}
		d.relocs = append(d.relocs, r)
	}
	return d, nil
}

func inData(data []byte, off, n uint64) bool {
	return off <= uint64(len(data)) && n <= uint64(len(data))-off
}

// The args each kind takes, as sets of tags.
const (
	tNone = 1 << tagNone
	tInt  = 1 << tagInt
	tData = 1 << tagData
	tSlot = 1 << tagSlot
	tAny  = tNone | tInt | tData | tSlot
)

var shapes = map[uint32][nArgs]uint32{
	kindSyscall:  {tAny, tAny, tAny, tAny, tAny, tAny},
	kindSendFD:   {tNone | tInt | tSlot, tInt | tSlot, tNone, tNone, tNone, tNone},
	kindCheckCwd: {tData, tNone, tNone, tNone, tNone, tNone},
	kindEqual:    {tData, tData, tNone, tNone, tNone, tNone},
	kindReply:    {tNone, tNone, tNone, tNone, tNone, tNone},
	kindSeccomp:  {tInt, tData, tNone, tNone, tNone, tNone},
}

func decodeOp(b, data []byte, set *uint64) (decodedOp, unix.Errno) {
	le := binary.LittleEndian
	o := decodedOp{
		kind: le.Uint32(b), flags: le.Uint32(b[4:]),
		out: le.Uint32(b[16:]), allow: le.Uint32(b[20:]), nr: le.Uint64(b[24:]),
	}
	for i := range o.args {
		at := b[32+16*i:]
		o.args[i] = wireArg{tag: le.Uint32(at), len: le.Uint32(at[4:]), val: le.Uint64(at[8:])}
	}
	nameOff, nameLen := uint64(le.Uint32(b[8:])), uint64(le.Uint32(b[12:]))
	if !inData(data, nameOff, nameLen) {
		return o, unix.ERANGE
	}
	o.name = string(data[nameOff : nameOff+nameLen])
	shape, ok := shapes[o.kind]
	if !ok {
		return o, unix.EINVAL
	}
	for i, a := range o.args {
		if shape[i]&(1<<a.tag) == 0 || a.tag > tagSlot {
			return o, unix.EINVAL
		}
	}
	switch {
	case o.kind == kindSyscall && o.nr >= 4096,
		o.kind == kindCheckCwd && o.args[0].len < 1,
		o.kind == kindEqual && o.args[0].len != o.args[1].len,
		o.kind == kindSeccomp && (o.args[1].len == 0 || o.args[1].len%8 != 0 || o.args[1].len > 4096*8),
		o.kind != kindSyscall && (o.flags != 0 || o.nr != 0),
		o.flags&^(flagOut|flagAllow) != 0,
		o.flags&flagOut == 0 && o.out != 0:
		return o, unix.EINVAL
	}
	if o.out >= NumSlots {
		return o, unix.EBADSLT
	}
	if o.flags&flagAllow != 0 && (o.allow == 0 || o.allow > 4095) || o.flags&flagAllow == 0 && o.allow != 0 {
		return o, unix.EINVAL
	}
	for _, a := range o.args {
		if e := checkArg(a, data, *set); e != 0 {
			return o, e
		}
	}
	if o.flags&flagOut != 0 {
		*set |= 1 << o.out
	}
	return o, 0
}

func checkArg(a wireArg, data []byte, set uint64) unix.Errno {
	switch a.tag {
	case tagNone:
		if a.len != 0 || a.val != 0 {
			return unix.EINVAL
		}
	case tagInt:
		if a.len != 0 {
			return unix.EINVAL
		}
	case tagData:
		if !inData(data, a.val, uint64(a.len)) {
			return unix.ERANGE
		}
	case tagSlot:
		if a.len != 0 {
			return unix.EINVAL
		}
		if a.val >= NumSlots || set>>a.val&1 == 0 {
			return unix.EBADSLT
		}
	}
	return 0
}
