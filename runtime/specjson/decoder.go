package specjson

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder reads JSON from b at i. Once failed, every read returns zero
// values and the caller falls back to encoding/json.
type decoder struct {
	b      []byte
	i      int
	failed bool
}

// maxDepth is encoding/json's nesting limit, kept for skipped values too.
const maxDepth = 10000

func (d *decoder) fail() { d.failed = true; d.i = len(d.b) }

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// lit consumes the literal s (true, false, null).
func (d *decoder) lit(s string) bool {
	if !strings.HasPrefix(string(d.b[d.i:]), s) {
		d.fail()
		return false
	}
	d.i += len(s)
	return true
}

// null consumes a null if one comes next.
func (d *decoder) null() bool {
	d.ws()
	if d.peek() == 'n' {
		return d.lit("null")
	}
	return false
}

// open consumes the opening c ('{' or '[') of a value; it returns false
// for null (a no-op for encoding/json) or on error.
func (d *decoder) open(c byte) bool {
	if d.null() || d.failed {
		return false
	}
	if d.peek() != c {
		d.fail()
		return false
	}
	d.i++
	return true
}

// next moves to the next element of an array or object opened with open:
// false at its end (consumed). In an object it also reads the key and its
// colon; key returns it.
func (d *decoder) next(end byte, first *bool) bool {
	d.ws()
	if d.failed {
		return false
	}
	if d.peek() == end {
		d.i++
		return false
	}
	if !*first {
		if d.peek() != ',' {
			d.fail()
			return false
		}
		d.i++
		d.ws()
	}
	*first = false
	return true
}

// key reads an object key and its colon.
func (d *decoder) key() string {
	if d.peek() != '"' {
		d.fail()
		return ""
	}
	k := d.rawStr()
	d.ws()
	if d.peek() != ':' {
		d.fail()
		return ""
	}
	d.i++
	return k
}

// seen marks field n of an object as decoded; a second time (a duplicate
// key, which encoding/json merges into the first value) is left to
// encoding/json.
func (d *decoder) seen(mask *uint64, n uint) {
	if *mask&(1<<n) != 0 {
		d.fail()
	}
	*mask |= 1 << n
}

// unknown skips the value of a key that names no field, unless it names
// one case-insensitively (encoding/json's fallback match).
func (d *decoder) unknown(k string, names []string) {
	for _, n := range names {
		if strings.EqualFold(k, n) {
			d.fail()
			return
		}
	}
	d.skip(0)
}

// str reads a string value; ok is false for null.
func (d *decoder) str() (string, bool) {
	if d.null() || d.failed {
		return "", false
	}
	if d.peek() != '"' {
		d.fail()
		return "", false
	}
	s := d.rawStr()
	return s, !d.failed
}

// rawStr reads the string at i (at its opening quote).
func (d *decoder) rawStr() string {
	d.i++
	start := d.i
	ascii := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(s) {
				// encoding/json replaces invalid bytes with U+FFFD.
				d.fail()
				return ""
			}
			return string(s)
		case c == '\\':
			return d.escapedStr(start)
		case c < 0x20:
			d.fail()
			return ""
		case c >= 0x80:
			ascii = false
		}
		d.i++
	}
	d.fail()
	return ""
}

// escapedStr finishes a string holding escapes, from start.
func (d *decoder) escapedStr(start int) string {
	out := make([]byte, 0, d.i-start+16)
	out = append(out, d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(out) {
				d.fail()
				return ""
			}
			return string(out)
		case c < 0x20:
			d.fail()
			return ""
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			break
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if d.i+4 > len(d.b) {
				d.fail()
				return ""
			}
			r, err := strconv.ParseUint(string(d.b[d.i:d.i+4]), 16, 32)
			// Surrogate pairs (and lone surrogates, which encoding/json
			// turns into U+FFFD) are left to encoding/json.
			if err != nil || r >= 0xd800 && r < 0xe000 {
				d.fail()
				return ""
			}
			out = utf8.AppendRune(out, rune(r))
			d.i += 4
		default:
			d.fail()
			return ""
		}
	}
	d.fail()
	return ""
}

func (d *decoder) bool() (bool, bool) {
	if d.null() || d.failed {
		return false, false
	}
	switch d.peek() {
	case 't':
		return true, d.lit("true")
	case 'f':
		return false, d.lit("false")
	}
	d.fail()
	return false, false
}

// number reads a JSON number literal (validated to JSON's grammar).
func (d *decoder) number() string {
	start := d.i
	if d.peek() == '-' {
		d.i++
	}
	switch c := d.peek(); {
	case c == '0':
		d.i++
	case c >= '1' && c <= '9':
		d.digits()
	default:
		d.fail()
		return ""
	}
	if d.peek() == '.' {
		d.i++
		if !d.digits() {
			return ""
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.i++
		if c := d.peek(); c == '+' || c == '-' {
			d.i++
		}
		if !d.digits() {
			return ""
		}
	}
	return string(d.b[start:d.i])
}

// digits consumes one or more digits.
func (d *decoder) digits() bool {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	if d.i == start {
		d.fail()
		return false
	}
	return true
}

// int reads a number into a signed integer of bits; ok is false for null.
// Like encoding/json, a fraction, exponent or overflow is an error.
func (d *decoder) int(bits int) (int64, bool) {
	if d.null() || d.failed {
		return 0, false
	}
	n, err := strconv.ParseInt(d.number(), 10, bits)
	if err != nil || d.failed {
		d.fail()
		return 0, false
	}
	return n, true
}

func (d *decoder) uint(bits int) (uint64, bool) {
	if d.null() || d.failed {
		return 0, false
	}
	n, err := strconv.ParseUint(d.number(), 10, bits)
	if err != nil || d.failed {
		d.fail()
		return 0, false
	}
	return n, true
}

// skip consumes any value, checking its syntax.
func (d *decoder) skip(depth int) {
	if depth > maxDepth {
		d.fail()
		return
	}
	d.ws()
	switch c := d.peek(); {
	case c == '{':
		d.i++
		for first := true; d.next('}', &first); {
			d.key()
			d.skip(depth + 1)
		}
	case c == '[':
		d.i++
		for first := true; d.next(']', &first); {
			d.skip(depth + 1)
		}
	case c == '"':
		d.rawStr()
	case c == 't':
		d.lit("true")
	case c == 'f':
		d.lit("false")
	case c == 'n':
		d.lit("null")
	default:
		d.number()
	}
}

// viaJSON decodes the next value with encoding/json into v: fields whose
// type holds an interface (the Windows section), rare on Linux.
func (d *decoder) viaJSON(v any) {
	d.ws()
	start := d.i
	d.skip(0)
	if d.failed {
		return
	}
	if err := json.Unmarshal(d.b[start:d.i], v); err != nil {
		d.fail()
	}
}
