// Package specjson decodes an OCI bundle's config.json without reflection.
//
// encoding/json analyses every struct type of specs.Spec by reflection on
// its first Unmarshal in a process (typeFields of the whole type tree):
// ~5 ms of CPU and ~100 page faults of each `estiba-runtime create` or
// `run`, more than the decoding itself. The decoder here is generated from
// the spec's types (gen.go → specjson_gen.go) and only copies fields.
//
// It is exact by construction: it accepts only what encoding/json accepts
// and decodes it to the same value; anything it is unsure of (a syntax or
// type error, a key matching a field only case-insensitively, a duplicate
// key, a UTF-16 surrogate escape, invalid UTF-8…) makes Decode fall back to
// encoding/json for the whole document, which then also gives the error.
// FuzzDecode holds it to that.
package specjson

import (
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

//go:generate go run gen.go

// Decode decodes config.json's bytes into a spec, as json.Unmarshal does.
func Decode(b []byte) (*specs.Spec, error) {
	if s, ok := decodeFast(b); ok {
		return s, nil
	}
	s := new(specs.Spec)
	if err := json.Unmarshal(b, s); err != nil {
		return nil, err
	}
	return s, nil
}

// decodeFast is the generated decoder alone: ok is false when it gave up.
func decodeFast(b []byte) (*specs.Spec, bool) {
	d := &decoder{b: b}
	s := new(specs.Spec)
	d.ws()
	if d.peek() != '{' {
		return nil, false
	}
	decSpec(d, s)
	d.ws()
	if d.failed || d.i != len(d.b) {
		return nil, false
	}
	return s, true
}
