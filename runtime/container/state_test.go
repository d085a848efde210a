package container

import (
	"os"
	"path/filepath"
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

// TestLoadRecord reads state.json as this binary writes it and as an older
// one did (the whole spec inside, under "spec").
func TestLoadRecord(t *testing.T) {
	for _, tc := range []struct {
		name, state string
		want        Record
		hasSpec     bool
	}{
		{"current", `{"id":"c","bundle":"/b","pid":7,"startTime":9,"started":true,"hasProcess":true,"cgroupsPath":"/x","annotations":{"a":"b"}}`,
			Record{ID: "c", Bundle: "/b", Pid: 7, StartTime: 9, Started: true, HasProcess: true, CgroupsPath: "/x", Annotations: map[string]string{"a": "b"}}, false},
		{"legacy", `{"id":"c","bundle":"/b","pid":7,"spec":{"process":{"cwd":"/"},"linux":{"cgroupsPath":"/y"},"annotations":{"k":"v"}}}`,
			Record{ID: "c", Bundle: "/b", Pid: 7, HasProcess: true, CgroupsPath: "/y", Annotations: map[string]string{"k": "v"}}, true},
		{"legacy null spec", `{"id":"c","bundle":"/b","pid":7,"spec":null}`,
			Record{ID: "c", Bundle: "/b", Pid: 7}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runtime{Root: t.TempDir()}
			if err := os.Mkdir(r.dir("c"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(r.dir("c"), stateFile), []byte(tc.state), 0o600); err != nil {
				t.Fatal(err)
			}
			rec, err := r.load("c")
			if err != nil {
				t.Fatal(err)
			}
			if (rec.LegacySpec != nil) != tc.hasSpec || (rec.Spec != nil) != tc.hasSpec {
				t.Errorf("legacy spec %v, spec %v; want both set: %v", rec.LegacySpec != nil, rec.Spec != nil, tc.hasSpec)
			}
			rec.LegacySpec, rec.Spec = nil, nil
			if !reflect.DeepEqual(*rec, tc.want) {
				t.Errorf("got %+v\nwant %+v", *rec, tc.want)
			}
		})
	}
}
