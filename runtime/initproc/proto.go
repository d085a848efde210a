// Package initproc is the container's init process: what the runtime binary
// does when the runtime re-execs it as "init" inside the new namespaces, up
// to the execve of the container's process. Its counterpart, the parent
// side, is runtime/container.
package initproc

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Arg is os.Args[1] of the re-exec'd init; EnvSync names the env variable
// holding the sync socket's fd number.
const (
	Arg     = "init"
	EnvSync = "_ESTIBA_SYNC_FD"
)

// GoDebug is the environment entry init runs with. Go (1.25+) otherwise
// opens its cgroup's CPU limit files (cpu.max, or cpu.cfs_quota_us and
// cpu.cfs_period_us) at startup to size GOMAXPROCS and keeps them open to
// follow changes: a created init would hold host cgroup files that a
// process exec'd into the container could reopen for writing through
// /proc/1/fd and lift its own CPU limit. containermaxprocs=0 makes the Go
// runtime close them right after its one read at startup, before main;
// updatemaxprocs=0 stops the periodic GOMAXPROCS updates.
// profstackdepth=0 spares every thread of init the two stack buffers Go
// allocates for profiling, which init never does.
const GoDebug = "GODEBUG=containermaxprocs=0,updatemaxprocs=0,profstackdepth=0"

// GoMaxProcs is init's other Go setting: one P. Init runs its setup on one
// locked thread with a few helper goroutines, and lives for milliseconds; a
// second P only adds scheduler work (spinning threads, wake-ups), ~4 ms of
// CPU per container start as measured side by side. Set explicitly, it
// also spares Go's startup the read of the cgroup's CPU limit.
const GoMaxProcs = "GOMAXPROCS=1"

// Config is everything init needs, sent by the parent over the sync socket
// once the child is in its cgroup (see Marshal for the wire form).
type Config struct {
	ID     string
	Bundle string
	// Spec is the container's spec (see speccodec.go for its wire form).
	Spec *specs.Spec
	// State is the container state at creation (pid filled in) that the
	// createContainer and startContainer hooks read on stdin. Only its
	// status and pid travel: the rest is ID, Bundle and the spec's
	// annotations.
	State specs.State
	// FifoPath is the exec fifo init blocks on until start.
	FifoPath string
	// Exec is set for `exec`: join an existing container, run Process.
	Exec bool
	// Process overrides Spec.Process for exec.
	Process *specs.Process

	NoPivot      bool
	NoNewKeyring bool
	// PreserveFDs fds from 3 on are kept open in the container process.
	PreserveFDs int
	// ConsoleFD is the child's fd of the --console-socket connection, or 0.
	ConsoleFD int
	// NewCgroupNS: init unshares the cgroup namespace itself, after the
	// parent has moved it into the container's cgroup (see container.Create).
	NewCgroupNS bool
	// MountNSFD, for exec, is the child's fd of the container's mount
	// namespace, joined after the runtime binary was exec'd.
	MountNSFD int
	// InUserNS: the container has its own user namespace.
	InUserNS bool
	// TimerSlack, if not 0, is the timer slack (ns) the container's
	// process gets: the runtime's caller's, not the wider one estiba's own
	// processes run with (see internal/timerslack).
	TimerSlack uint64
}

// Message types over the sync socket. The exchange is strictly alternating:
//
//	parent → child  config        (Config)
//	child  → parent mounted       rootfs is set up, not pivoted: run the
//	                              prestart and createRuntime hooks now
//	parent → child  continue
//	child  → parent ready | error (then init blocks on the exec fifo)
const (
	MsgConfig   byte = 'c'
	MsgMounted  byte = 'm'
	MsgContinue byte = 'g'
	MsgReady    byte = 'r'
	MsgError    byte = 'e' // payload: the error text
)

// The wire form is hand-made rather than JSON: a fresh process's first use
// of encoding/json on a spec analyses the spec's types by reflection, ~2 ms
// per side and container start (Encode builds encoders for the whole type
// tree). The spec and process go in speccodec.go's generated binary form.
//
// A message is a frame: its type (one byte), the payload's length (4 bytes,
// little-endian), the payload. A config's payload is a sequence of fields,
// each a tag byte, a uvarint length and the value; integers are uvarints.
const maxFrame = 64 << 20

// Tags of the config's fields.
const (
	tagID byte = iota + 1
	tagBundle
	tagFifo
	tagSpec
	tagProcess
	tagStatus
	tagPid
	tagFlags
	tagPreserveFDs
	tagConsoleFD
	tagMountNSFD
	tagTimerSlack
)

// Bits of tagFlags.
const (
	flagExec = 1 << iota
	flagNoPivot
	flagNoNewKeyring
	flagNewCgroupNS
	flagInUserNS
)

// WriteMsg writes one message.
func WriteMsg(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("sync message of %d bytes is too large", len(payload))
	}
	b := make([]byte, 5, 5+len(payload))
	b[0] = typ
	binary.LittleEndian.PutUint32(b[1:], uint32(len(payload)))
	_, err := w.Write(append(b, payload...))
	return err
}

// ReadMsg reads one message.
func ReadMsg(r io.Reader) (typ byte, payload []byte, err error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(h[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("sync message of %d bytes is too large", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("short sync message: %w", err)
	}
	return h[0], payload, nil
}

// Marshal encodes c as a config message's payload.
func (c *Config) Marshal() ([]byte, error) {
	spec, err := encodeSpec(c.Spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	b := make([]byte, 0, 256+len(spec))
	str := func(tag byte, v []byte) []byte {
		b = append(b, tag)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	}
	num := func(tag byte, v uint64) []byte {
		return str(tag, binary.AppendUvarint(nil, v))
	}
	b = str(tagID, []byte(c.ID))
	b = str(tagBundle, []byte(c.Bundle))
	b = str(tagFifo, []byte(c.FifoPath))
	b = str(tagSpec, spec)
	if c.Process != nil {
		p, err := encodeProcess(c.Process)
		if err != nil {
			return nil, fmt.Errorf("encode process: %w", err)
		}
		b = str(tagProcess, p)
	}
	b = str(tagStatus, []byte(c.State.Status))
	b = num(tagPid, uint64(c.State.Pid))
	var flags uint64
	for _, f := range []struct {
		on  bool
		bit uint64
	}{{c.Exec, flagExec}, {c.NoPivot, flagNoPivot}, {c.NoNewKeyring, flagNoNewKeyring}, {c.NewCgroupNS, flagNewCgroupNS}, {c.InUserNS, flagInUserNS}} {
		if f.on {
			flags |= f.bit
		}
	}
	b = num(tagFlags, flags)
	b = num(tagPreserveFDs, uint64(c.PreserveFDs))
	b = num(tagConsoleFD, uint64(c.ConsoleFD))
	b = num(tagMountNSFD, uint64(c.MountNSFD))
	if c.TimerSlack != 0 {
		b = num(tagTimerSlack, c.TimerSlack)
	}
	return b, nil
}

// Unmarshal decodes a config message's payload into c.
func (c *Config) Unmarshal(b []byte) error {
	var spec, proc []byte
	var flags uint64
	for len(b) > 0 {
		tag := b[0]
		n, k := binary.Uvarint(b[1:])
		if k <= 0 || n > uint64(len(b)-1-k) {
			return fmt.Errorf("config field %d: bad length", tag)
		}
		v := b[1+k : 1+k+int(n)]
		b = b[1+k+int(n):]
		num := func() (int, error) {
			x, k := binary.Uvarint(v)
			if k <= 0 || k != len(v) || x > math.MaxInt32 {
				return 0, fmt.Errorf("config field %d: bad number", tag)
			}
			return int(x), nil
		}
		var err error
		switch tag {
		case tagID:
			c.ID = string(v)
		case tagBundle:
			c.Bundle = string(v)
		case tagFifo:
			c.FifoPath = string(v)
		case tagSpec:
			spec = v
		case tagProcess:
			proc = v
		case tagStatus:
			c.State.Status = specs.ContainerState(v)
		case tagPid:
			c.State.Pid, err = num()
		case tagFlags:
			var f int
			f, err = num()
			flags = uint64(f)
		case tagPreserveFDs:
			c.PreserveFDs, err = num()
		case tagConsoleFD:
			c.ConsoleFD, err = num()
		case tagMountNSFD:
			c.MountNSFD, err = num()
		case tagTimerSlack:
			var ns int
			ns, err = num()
			c.TimerSlack = uint64(ns)
		default:
			return fmt.Errorf("config: unknown field %d", tag)
		}
		if err != nil {
			return err
		}
	}
	if spec == nil {
		return fmt.Errorf("config: no spec")
	}
	var err error
	if c.Spec, err = decodeSpec(spec); err != nil {
		return err
	}
	if proc != nil {
		if c.Process, err = decodeProcess(proc); err != nil {
			return fmt.Errorf("process: %w", err)
		}
	}
	c.Exec = flags&flagExec != 0
	c.NoPivot = flags&flagNoPivot != 0
	c.NoNewKeyring = flags&flagNoNewKeyring != 0
	c.NewCgroupNS = flags&flagNewCgroupNS != 0
	c.InUserNS = flags&flagInUserNS != 0
	c.State.Version = specs.Version
	c.State.ID = c.ID
	c.State.Bundle = c.Bundle
	c.State.Annotations = c.Spec.Annotations
	return nil
}
