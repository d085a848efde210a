//go:build ignore

// gen_speccodec writes speccodec_gen.go: a reflection-free binary encoder
// and decoder for specs.Spec, generated from the spec types themselves (see
// speccodec.go for why). Run with `go generate ./runtime/initproc` after
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
	g.Need(reflect.TypeOf(specs.Process{}))
	g.Write("speccodec_gen.go", "gen_speccodec.go", "initproc", g.structFuncs)
}

func (g *gen) structFuncs(t reflect.Type) {
	g.P("func enc%s(e *encoder, v *specs.%s) {", t.Name(), t.Name())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		g.enc(f.Type, "v."+f.Name)
	}
	g.P("}\n")
	g.P("func dec%s(d *decoder, v *specs.%s) {", t.Name(), t.Name())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		g.dec(f.Type, "v."+f.Name)
	}
	g.P("}\n")
}

func (g *gen) enc(t reflect.Type, x string) {
	if typegen.HasInterface(t, map[reflect.Type]bool{}) {
		if t.Kind() == reflect.Pointer {
			g.P("if e.present(%s != nil) {", x)
			g.P("e.json(%s)", x)
			g.P("}")
			return
		}
		g.P("e.json(%s)", x)
		return
	}
	switch t.Kind() {
	case reflect.String:
		g.P("e.str(string(%s))", x)
	case reflect.Bool:
		g.P("e.bool(bool(%s))", x)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		g.P("e.int(int64(%s))", x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		g.P("e.uint(uint64(%s))", x)
	case reflect.Pointer:
		g.P("if e.present(%s != nil) {", x)
		g.enc(t.Elem(), "(*"+x+")")
		g.P("}")
	case reflect.Slice:
		el := g.V()
		g.P("if e.count(%s == nil, len(%s)) {", x, x)
		g.P("for _, %s := range %s {", el, x)
		g.enc(t.Elem(), el)
		g.P("}}")
	case reflect.Map:
		k, el := g.V(), g.V()
		g.P("if e.count(%s == nil, len(%s)) {", x, x)
		g.P("for %s, %s := range %s {", k, el, x)
		g.enc(t.Key(), k)
		g.enc(t.Elem(), el)
		g.P("}}")
	case reflect.Struct:
		g.Need(t)
		if strings.HasPrefix(x, "(*") {
			g.P("enc%s(e, %s)", t.Name(), strings.TrimSuffix(strings.TrimPrefix(x, "(*"), ")"))
		} else {
			g.P("enc%s(e, &%s)", t.Name(), x)
		}
	default:
		log.Fatalf("%s: kind %v not handled", x, t.Kind())
	}
}

func (g *gen) dec(t reflect.Type, x string) {
	if typegen.HasInterface(t, map[reflect.Type]bool{}) {
		if t.Kind() == reflect.Pointer {
			g.P("if d.present() {")
			g.P("d.json(&%s)", x)
			g.P("}")
			return
		}
		g.P("d.json(&%s)", x)
		return
	}
	te := g.TypeExpr(t)
	switch t.Kind() {
	case reflect.String:
		g.P("%s = %s(d.str())", x, te)
	case reflect.Bool:
		g.P("%s = %s(d.bool())", x, te)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		g.P("%s = %s(d.int(%d))", x, te, t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		g.P("%s = %s(d.uint(%d))", x, te, t.Bits())
	case reflect.Pointer:
		g.P("if d.present() {")
		g.P("%s = new(%s)", x, g.TypeExpr(t.Elem()))
		g.dec(t.Elem(), "(*"+x+")")
		g.P("}")
	case reflect.Slice:
		n, i := g.V(), g.V()
		g.P("if %s := d.count(); %s >= 0 {", n, n)
		g.P("%s = make(%s, %s)", x, te, n)
		g.P("for %s := range %s {", i, x)
		g.dec(t.Elem(), x+"["+i+"]")
		g.P("}}")
	case reflect.Map:
		n, k, el := g.V(), g.V(), g.V()
		g.P("if %s := d.count(); %s >= 0 {", n, n)
		g.P("%s = make(%s, %s)", x, te, n)
		g.P("for range %s {", n)
		g.P("var %s %s", k, g.TypeExpr(t.Key()))
		g.P("var %s %s", el, g.TypeExpr(t.Elem()))
		g.dec(t.Key(), k)
		g.dec(t.Elem(), el)
		g.P("%s[%s] = %s", x, k, el)
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
