// Package detach reads Docker's detach keys ("ctrl-p,ctrl-q" by default)
// out of an attached client's input. The daemon and the CLI both watch for
// them, as Docker's do: the daemon so that any client can detach, the CLI
// so that it knows the stream ended by a detach, not by an exit.
package detach

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Default is Docker's default sequence.
const Default = "ctrl-p,ctrl-q"

// ErrDetached is returned by Reader once the whole sequence was read.
var ErrDetached = errors.New("read escape sequence")

// Parse turns "ctrl-p,ctrl-q" or "a,ctrl-@" into bytes: each key is one
// character or ctrl-<c> with c in a-z, @, [, \, ], ^, _ (Docker's set).
func Parse(keys string) ([]byte, error) {
	if keys == "" {
		keys = Default
	}
	var out []byte
	for _, k := range strings.Split(keys, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, fmt.Errorf("invalid detach key %q in %q", k, keys)
			}
		default:
			return nil, fmt.Errorf("invalid detach key %q in %q", k, keys)
		}
	}
	return out, nil
}

// Reader passes r through, holding back a partial match of keys: the held
// bytes are released when the next byte does not continue the sequence,
// and dropped with ErrDetached when it completes.
type Reader struct {
	r       io.Reader
	keys    []byte
	matched int
	pending []byte // released bytes not yet returned
	buf     []byte
	done    bool
}

// NewReader watches r for keys (never empty).
func NewReader(r io.Reader, keys []byte) *Reader {
	return &Reader{r: r, keys: keys}
}

func (d *Reader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.done {
			return 0, ErrDetached
		}
		if cap(d.buf) < len(p) {
			d.buf = make([]byte, len(p))
		}
		n, err := d.r.Read(d.buf[:len(p)])
		d.scan(d.buf[:n])
		if err != nil && len(d.pending) == 0 && !d.done {
			return 0, err
		}
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

func (d *Reader) scan(b []byte) {
	for _, c := range b {
		if c == d.keys[d.matched] {
			d.matched++
			if d.matched == len(d.keys) {
				// Input after the sequence is dropped, as Docker does.
				d.done, d.matched = true, 0
				return
			}
			continue
		}
		if d.matched > 0 {
			d.pending = append(d.pending, d.keys[:d.matched]...)
			d.matched = 0
			if c == d.keys[0] {
				d.matched = 1
				continue
			}
		}
		d.pending = append(d.pending, c)
	}
}
