package container

import (
	"reflect"
	"testing"
)

// TestSavedRecordFields keeps savedRecord in step with Record: the same JSON
// fields, of the same types, but LegacySpec.
func TestSavedRecordFields(t *testing.T) {
	fields := func(v any) map[string]reflect.Type {
		m := map[string]reflect.Type{}
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if tag := f.Tag.Get("json"); f.IsExported() && tag != "-" {
				m[f.Name+" "+tag] = f.Type
			}
		}
		return m
	}
	want := fields(Record{})
	delete(want, `LegacySpec spec,omitempty`)
	if got := fields(savedRecord{}); !reflect.DeepEqual(got, want) {
		t.Errorf("savedRecord fields %v\nwant (Record's but LegacySpec) %v", got, want)
	}
}
