package initproc

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

//go:generate go run gen_speccodec.go

// The spec crosses the sync socket in a binary form whose encoder and
// decoder are generated from the spec's types (speccodec_gen.go), not as
// JSON: encoding/json's first Unmarshal in a fresh process analyses every
// struct type it meets by reflection, about 2 ms of init's time on each
// container start, where the generated code only copies fields. The form is
// private to one build (parent and init may be two binaries, but init
// refuses a runtime of another version: see Main), so it needs no
// versioning: every exported field, in declaration order; strings
// and counts as uvarints, signed numbers as varints, a presence byte before
// pointers, count+1 before slices and maps (0: nil). Fields of a type that
// holds an interface (only the Windows section) travel as JSON.

// encodeSpec returns the binary form of s.
func encodeSpec(s *specs.Spec) ([]byte, error) {
	e := &encoder{b: make([]byte, 0, 4096)}
	encSpec(e, s)
	return e.b, e.err
}

// decodeSpec reads the binary form of a spec.
func decodeSpec(b []byte) (*specs.Spec, error) {
	d := &decoder{b: b}
	s := new(specs.Spec)
	decSpec(d, s)
	return s, d.finish()
}

func encodeProcess(p *specs.Process) ([]byte, error) {
	e := &encoder{}
	encProcess(e, p)
	return e.b, e.err
}

func decodeProcess(b []byte) (*specs.Process, error) {
	d := &decoder{b: b}
	p := new(specs.Process)
	decProcess(d, p)
	return p, d.finish()
}

type encoder struct {
	b   []byte
	err error
}

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }

func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// present writes whether a pointer is set and returns it.
func (e *encoder) present(set bool) bool {
	e.bool(set)
	return set
}

// count writes a slice's or map's length (0 for nil, else n+1) and returns
// whether elements follow.
func (e *encoder) count(isNil bool, n int) bool {
	if isNil {
		e.uint(0)
		return false
	}
	e.uint(uint64(n) + 1)
	return n > 0
}

func (e *encoder) json(v any) {
	b, err := json.Marshal(v)
	if err != nil && e.err == nil {
		e.err = err
	}
	e.str(string(b))
}

var errShort = errors.New("truncated")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) uint(bits int) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	if bits < 64 && v > 1<<bits-1 {
		d.fail(fmt.Errorf("%d overflows uint%d", v, bits))
		return 0
	}
	return v
}

func (d *decoder) int(bits int) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	if bits < 64 && (v > 1<<(bits-1)-1 || v < -1<<(bits-1)) {
		d.fail(fmt.Errorf("%d overflows int%d", v, bits))
		return 0
	}
	return v
}

func (d *decoder) str() string {
	n := d.uint(64)
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) bool() bool {
	if len(d.b) == 0 {
		d.fail(errShort)
		return false
	}
	v := d.b[0]
	d.b = d.b[1:]
	if v > 1 {
		d.fail(fmt.Errorf("bad bool %d", v))
	}
	return v == 1
}

func (d *decoder) present() bool { return d.bool() }

// count reads a length written by encoder.count: -1 for nil. A length
// larger than the bytes left is refused before anything is allocated
// (every element takes at least one byte).
func (d *decoder) count() int {
	n := d.uint(64)
	if n == 0 || d.err != nil {
		return -1
	}
	if n-1 > uint64(len(d.b)) || n-1 > math.MaxInt32 {
		d.fail(errShort)
		return -1
	}
	return int(n - 1)
}

func (d *decoder) json(v any) {
	s := d.str()
	if d.err != nil {
		return
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		d.fail(err)
	}
}

func (d *decoder) finish() error {
	if d.err != nil {
		return fmt.Errorf("decode spec: %w", d.err)
	}
	if len(d.b) > 0 {
		return fmt.Errorf("decode spec: %d bytes left over", len(d.b))
	}
	return nil
}
