package detach

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		bad  bool
	}{
		{in: "", want: []byte{16, 17}},
		{in: "ctrl-p,ctrl-q", want: []byte{16, 17}},
		{in: "ctrl-a,x", want: []byte{1, 'x'}},
		{in: "ctrl-@,ctrl-[,ctrl-_", want: []byte{0, 27, 31}},
		{in: "ctrl-1", bad: true},
		{in: "ab", bad: true},
		{in: "ctrl-p,", bad: true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.bad || !bytes.Equal(got, tc.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestReader(t *testing.T) {
	keys := []byte{16, 17}
	for _, tc := range []struct {
		name, in, want string
		detached       bool
	}{
		{name: "plain", in: "hello", want: "hello"},
		{name: "detach", in: "ab\x10\x11cd", want: "ab", detached: true},
		{name: "partial released", in: "a\x10b", want: "a\x10b"},
		{name: "partial then match", in: "\x10\x10\x11z", want: "\x10", detached: true},
		{name: "partial at EOF", in: "a\x10", want: "a"},
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = bytes.NewReader([]byte(tc.in))
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(NewReader(r, keys))
			if string(got) != tc.want || errors.Is(err, ErrDetached) != tc.detached {
				t.Errorf("%s (one byte %v): got %q, %v; want %q, detached %v", tc.name, oneByte, got, err, tc.want, tc.detached)
			}
		}
	}
}
