package cli

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/estiba/estiba/engine/api/types"
)

// fill sets every field reachable from v to a value that is not empty,
// varied by n: pointers, slices and maps get one or two elements.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString("s\"\\\n\x01<&>\u2028é\xff" + string(rune('a'+*n%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(*n) * 1001)
	case reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), n)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0), n)
		fill(s.Index(1), n)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, n)
			fill(e, n)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	case reflect.Interface:
		// NetworkingConfig: left nil (json.Marshal's, see createBody).
	default:
		panic("fill: " + v.Kind().String())
	}
}

// The hand-written body decodes as json.Marshal's does, whatever is set:
// nothing, everything (a field added to the types and not to createBody
// fails this), and what run sends.
func TestCreateBodyMatchesJSON(t *testing.T) {
	n := 0
	full := &types.ContainerCreateRequest{}
	fill(reflect.ValueOf(full).Elem(), &n)
	full.NetworkingConfig = nil
	zeroes := &types.ContainerCreateRequest{HostConfig: &types.HostConfig{
		PortBindings: map[string][]types.PortBinding{"80/tcp": nil, "81/tcp": {}},
		Resources:    types.Resources{Ulimits: []*types.Ulimit{nil}},
	}}
	timeout, f := 3, false
	run := &types.ContainerCreateRequest{
		Config: types.Config{Image: "busybox", Cmd: []string{"sh", "-c", "echo \"hi\" >&2"}, AttachStdout: true, AttachStderr: true,
			StopTimeout: &timeout, Healthcheck: &types.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: time.Second}},
		HostConfig: &types.HostConfig{AutoRemove: true, NetworkMode: "none", Init: &f},
	}
	tests := []struct {
		name string
		req  *types.ContainerCreateRequest
	}{
		{"empty", &types.ContainerCreateRequest{}},
		{"zero values", zeroes},
		{"every field", full},
		{"run", run},
		{"networking config", &types.ContainerCreateRequest{NetworkingConfig: map[string]any{"EndpointsConfig": nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := createBody(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("invalid JSON %s: %v", got, err)
			}
			json.Unmarshal(want, &w)
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("createBody (cli/createjson.go: a field of the types missing there?):\n%s\njson.Marshal:\n%s", got, want)
			}
			// And it decodes into the same request.
			var back types.ContainerCreateRequest
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseCreateResponse(t *testing.T) {
	for _, in := range []string{
		`{"Id":"abc","Warnings":[]}` + "\n",
		`{"Id":"abc","Warnings":null}`,
		` { "Warnings" : [ "w1" , "w\"2" ] , "Id" : "abc" } `,
		`{"Id":"abc","Warnings":["w1","w2"],"Extra":1}`,
		`{"Id":"a\u00e9","Warnings":["\ud83d\ude00"]}`,
		`{"Id":"abc"}`,
		`{}`,
		`{"Id":"abc",}`,
		`{"Id":"abc"} x`,
		`["abc"]`,
		`{"Id":"ab` + "\xff" + `"}`,
	} {
		got, gerr := parseCreateResponse([]byte(in))
		var want types.ContainerCreateResponse
		werr := json.Unmarshal([]byte(in), &want)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, %v; encoding/json %+v, %v", in, got, gerr, want, werr)
		}
	}
}

func TestParseWaitResponse(t *testing.T) {
	for _, in := range []string{
		`{"StatusCode":0}` + "\n",
		`{"StatusCode":137}`,
		`{ "StatusCode" : -1 }`,
		`{"StatusCode":3,"Error":{"Message":"boom"}}`,
		`{"StatusCode":1.5}`,
		`{"StatusCode":"1"}`,
		`{"StatusCode":99999999999999999999}`,
		`{"StatusCode":1}x`,
		``,
		`{}`,
	} {
		got, gerr := parseWaitResponse([]byte(in))
		var want types.WaitResponse
		werr := json.Unmarshal([]byte(in), &want)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %+v, %v; encoding/json %+v, %v", in, got, gerr, want, werr)
		}
	}
}
