package initproc

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fill sets every field reachable from v to a non-zero value (slices and
// maps get two elements), so that a field the codec forgot shows up as a
// difference. Interfaces get a JSON-shaped value.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-int64(*n % 100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n%200 + 1))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := 0; i < 2; i++ {
			fill(v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for i := 0; i < 2; i++ {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, n)
			fill(e, n)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	case reflect.Interface:
		v.Set(reflect.ValueOf(map[string]any{"k": fmt.Sprintf("v%d", *n)}))
	default:
		panic(fmt.Sprintf("fill: kind %v", v.Kind()))
	}
}

func TestSpecCodecRoundTrip(t *testing.T) {
	full := new(specs.Spec)
	n := 0
	fill(reflect.ValueOf(full).Elem(), &n)
	empty := &specs.Spec{Process: &specs.Process{Args: []string{}, Env: nil}, Linux: &specs.Linux{Sysctl: map[string]string{}}}
	var def specs.Spec
	if err := json.Unmarshal([]byte(`{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["true"],"cwd":"/"},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"}],"maskedPaths":["/proc/kcore"]}}`), &def); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec *specs.Spec
	}{
		{"every field set", full},
		{"nil and empty kept apart", empty},
		{"zero", &specs.Spec{}},
		{"a small config.json", &def},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := encodeSpec(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeSpec(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.spec) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(tc.spec)
				t.Errorf("round trip differs:\n got %s\nwant %s", gj, wj)
			}
			// Every truncation fails cleanly, never panics.
			for i := 0; i < len(b); i++ {
				if _, err := decodeSpec(b[:i]); err == nil {
					t.Fatalf("truncated to %d of %d bytes: no error", i, len(b))
				}
			}
			if _, err := decodeSpec(append(b, 0)); err == nil {
				t.Error("trailing byte accepted")
			}
		})
	}
	p := full.Process
	b, err := encodeProcess(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeProcess(b); err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("process round trip: %v", err)
	}
}

func TestSpecCodecOverflow(t *testing.T) {
	// A uid of 2^32 does not fit the uint32 field.
	d := &decoder{b: []byte{0x80, 0x80, 0x80, 0x80, 0x10}}
	if d.uint(32); d.err == nil {
		t.Error("uint32 overflow accepted")
	}
	d = &decoder{b: []byte{0x80, 0x80, 0x80, 0x80, 0x10}}
	if d.int(32); d.err == nil {
		t.Error("int32 overflow accepted")
	}
	d = &decoder{b: []byte{0xff, 0xff, 0x03}}
	if d.count() != -1 || d.err == nil {
		t.Error("count beyond the input accepted")
	}
}
