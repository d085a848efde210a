//go:build ignore

// gen writes specjson_gen.go: a reflection-free JSON decoder for specs.Spec
// generated from the spec types themselves, with encoding/json's field
// names (see specjson.go). Run with `go generate ./runtime/specjson` after
// updating github.com/opencontainers/runtime-spec.
package main

import (
	"log"
	"reflect"
	"strings"

	"github.com/estiba/estiba/internal/typegen"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// gen is the shared walk (internal/typegen) plus this file's emitters.
type gen struct{ *typegen.Gen }

func main() {
	g := &gen{typegen.New()}
	g.Need(reflect.TypeOf(specs.Spec{}))
	g.Write("specjson_gen.go", "gen.go", "specjson", g.structFunc)
}

// jsonName is encoding/json's name of field f, "" if it has none.
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return ""
	}
	name, opts, _ := strings.Cut(tag, ",")
	for _, o := range strings.Split(opts, ",") {
		if o == "string" {
			log.Fatalf("field %s: ,string not handled", f.Name)
		}
	}
	if name == "" {
		return f.Name
	}
	return name
}

// field is a JSON key of a struct: its name, Go selector and type.
type field struct {
	name, sel string
	typ       reflect.Type
}

// fields lists t's JSON keys, those of embedded untagged structs inlined
// (encoding/json promotes them).
func fields(t reflect.Type, sel string) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Tag.Get("json") == "" {
			if f.Type.Kind() != reflect.Struct {
				log.Fatalf("embedded %s: not a struct", f.Name)
			}
			out = append(out, fields(f.Type, sel+f.Name+".")...)
			continue
		}
		if n := jsonName(f); n != "" {
			out = append(out, field{n, sel + f.Name, f.Type})
		}
	}
	return out
}

func (g *gen) structFunc(t reflect.Type) {
	fs := fields(t, "v.")
	var names []string
	dup := map[string]bool{}
	for _, f := range fs {
		if dup[f.name] {
			log.Fatalf("%s: key %q twice", t.Name(), f.name)
		}
		dup[f.name] = true
		names = append(names, f.name)
	}
	if len(names) > 64 {
		log.Fatalf("%s: more than 64 fields", t.Name())
	}
	g.P("var names%s = %#v\n", t.Name(), names)
	g.P("func dec%s(d *decoder, v *specs.%s) {", t.Name(), t.Name())
	g.P("if !d.open('{') { return }")
	g.P("var seen uint64")
	g.P("for first := true; d.next('}', &first); {")
	g.P("switch k := d.key(); k {")
	for n, f := range fs {
		g.P("case %q:", f.name)
		g.P("d.seen(&seen, %d)", n)
		g.dec(f.typ, f.sel)
	}
	g.P("default:")
	g.P("d.unknown(k, names%s)", t.Name())
	g.P("}}}\n")
}

// dec emits the decoding of the next value into x, of type t.
func (g *gen) dec(t reflect.Type, x string) {
	if typegen.HasInterface(t, map[reflect.Type]bool{}) {
		g.P("d.viaJSON(&%s)", x)
		return
	}
	te := g.TypeExpr(t)
	switch t.Kind() {
	case reflect.String:
		g.P("if s, ok := d.str(); ok { %s = %s(s) }", x, te)
	case reflect.Bool:
		g.P("if b, ok := d.bool(); ok { %s = %s(b) }", x, te)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		g.P("if n, ok := d.int(%d); ok { %s = %s(n) }", t.Bits(), x, te)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		g.P("if n, ok := d.uint(%d); ok { %s = %s(n) }", t.Bits(), x, te)
	case reflect.Pointer:
		// null sets nil; anything else a new value (never a merge:
		// duplicate keys are refused).
		g.P("if d.null() { %s = nil } else {", x)
		g.P("%s = new(%s)", x, g.TypeExpr(t.Elem()))
		g.dec(t.Elem(), "(*"+x+")")
		g.P("}")
	case reflect.Slice:
		el := g.V()
		// As encoding/json: null is nil, [] an empty non-nil slice.
		g.P("if d.null() { %s = nil } else if d.open('[') {", x)
		g.P("%s = %s{}", x, te)
		g.P("for first := true; d.next(']', &first); {")
		g.P("var %s %s", el, g.TypeExpr(t.Elem()))
		g.dec(t.Elem(), el)
		g.P("%s = append(%s, %s)", x, x, el)
		g.P("}}")
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			log.Fatalf("%s: map key %v not handled", x, t.Key())
		}
		el := g.V()
		g.P("if d.null() { %s = nil } else if d.open('{') {", x)
		g.P("%s = %s{}", x, te)
		g.P("for first := true; d.next('}', &first); {")
		g.P("k := d.key()")
		g.P("var %s %s", el, g.TypeExpr(t.Elem()))
		g.dec(t.Elem(), el)
		g.P("%s[%s(k)] = %s", x, g.TypeExpr(t.Key()), el)
		g.P("}}")
	case reflect.Struct:
		g.Need(t)
		if strings.HasPrefix(x, "(*") {
			g.P("dec%s(d, %s)", t.Name(), strings.TrimSuffix(strings.TrimPrefix(x, "(*"), ")"))
		} else {
			g.P("dec%s(d, &%s)", t.Name(), x)
		}
	default:
		log.Fatalf("%s: kind %v not handled", x, t.Kind())
	}
}
