package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
)

// fakeNetworks keeps networks by name; "busy" networks have a container.
type fakeNetworks struct {
	nets      map[string]types.NetworkResource
	connected []string
}

func (f *fakeNetworks) NetworkList(context.Context) ([]types.NetworkResource, error) {
	var out []types.NetworkResource
	for _, n := range f.nets {
		out = append(out, n)
	}
	return out, nil
}

func (f *fakeNetworks) NetworkInspect(_ context.Context, ref string) (*types.NetworkResource, error) {
	n, ok := f.nets[ref]
	if !ok {
		return nil, fmt.Errorf("network %s: %w", ref, errdefs.ErrNotFound)
	}
	return &n, nil
}

func (f *fakeNetworks) NetworkCreate(_ context.Context, req *types.NetworkCreateRequest) (*types.NetworkCreateResponse, error) {
	if _, ok := f.nets[req.Name]; ok {
		return nil, fmt.Errorf("network %s exists: %w", req.Name, errdefs.ErrConflict)
	}
	if req.Driver != "" && req.Driver != "bridge" {
		return nil, fmt.Errorf("driver %s: %w", req.Driver, errdefs.ErrInvalid)
	}
	f.nets[req.Name] = types.NetworkResource{Name: req.Name, ID: "id-" + req.Name, Driver: "bridge", Labels: req.Labels}
	return &types.NetworkCreateResponse{ID: "id-" + req.Name}, nil
}

func (f *fakeNetworks) NetworkRemove(_ context.Context, ref string) error {
	n, ok := f.nets[ref]
	if !ok {
		return fmt.Errorf("network %s: %w", ref, errdefs.ErrNotFound)
	}
	if len(n.Containers) > 0 {
		return fmt.Errorf("network %s in use: %w", ref, errdefs.ErrConflict)
	}
	delete(f.nets, ref)
	return nil
}

func (f *fakeNetworks) NetworkConnect(_ context.Context, ref string, req *types.NetworkConnectRequest) error {
	if _, ok := f.nets[ref]; !ok {
		return fmt.Errorf("network %s: %w", ref, errdefs.ErrNotFound)
	}
	f.connected = append(f.connected, ref+"/"+req.Container+"/"+strings.Join(req.EndpointConfig.Aliases, ","))
	return nil
}

func (f *fakeNetworks) NetworkDisconnect(_ context.Context, ref string, req *types.NetworkDisconnectRequest) error {
	return fmt.Errorf("container %s: %w", req.Container, errdefs.ErrNotFound)
}

func (f *fakeNetworks) NetworkPrune(context.Context) ([]string, error) {
	var out []string
	for name, n := range f.nets {
		if len(n.Containers) == 0 && name != "bridge" {
			delete(f.nets, name)
			out = append(out, name)
		}
	}
	return out, nil
}

func TestNetworkEndpoints(t *testing.T) {
	f := &fakeNetworks{nets: map[string]types.NetworkResource{
		"bridge": {Name: "bridge", ID: "id-bridge", Driver: "bridge"},
		"busy":   {Name: "busy", ID: "id-busy", Driver: "bridge", Containers: map[string]types.EndpointResource{"c1": {Name: "c1"}}},
	}}
	srv := New(nil, nil, nil, nil, nil, types.Version{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv.SetNetworks(f)
	filt := url.QueryEscape(`{"label":["team=a"]}`)
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string // substring of the answer
	}{
		{"POST", "/v1.43/networks/create", `{"Name":"a","Labels":{"team":"a"}}`, 201, `"Id":"id-a"`},
		{"POST", "/networks/create", `{"Name":"a"}`, 409, "exists"},
		{"POST", "/networks/create", `{"Name":"o","Driver":"overlay"}`, 400, "driver"},
		{"POST", "/networks/create", `{"Name":`, 400, "decode"},
		{"GET", "/networks?filters=" + filt, "", 200, `"Name":"a"`},
		{"GET", "/networks?filters=" + url.QueryEscape(`{"name":["zz"]}`), "", 200, `[]`},
		{"GET", "/networks?filters=" + url.QueryEscape(`{"bogus":["x"]}`), "", 400, "invalid filter"},
		{"GET", "/networks/a", "", 200, `"Id":"id-a"`},
		{"GET", "/networks/nope", "", 404, "nope"},
		{"DELETE", "/networks/busy", "", 409, "in use"},
		{"POST", "/networks/a/connect", `{"Container":"c2","EndpointConfig":{"Aliases":["web"]}}`, 200, ""},
		{"POST", "/networks/a/connect", `{}`, 400, "container is required"},
		{"POST", "/networks/nope/connect", `{"Container":"c2","EndpointConfig":{}}`, 404, ""},
		{"POST", "/networks/a/disconnect", `{"Container":"ghost"}`, 404, "ghost"},
		{"POST", "/networks/prune", "", 200, `"NetworksDeleted":["a"]`},
		{"DELETE", "/networks/a", "", 404, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("%d %s, want %d with %q", rec.Code, rec.Body, tc.code, tc.want)
			}
			if rec.Code >= 400 {
				var e struct{ Message string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message == "" {
					t.Fatalf("error body %q is not docker's {message}", rec.Body)
				}
			}
		})
	}
	if len(f.connected) != 1 || f.connected[0] != "a/c2/web" {
		t.Fatalf("connected %v", f.connected)
	}
}

func TestNetworkFilters(t *testing.T) {
	nr := types.NetworkResource{Name: "front-end", ID: "abc123", Driver: "bridge", Scope: "local", Labels: map[string]string{"team": "a", "x": ""}}
	for _, tc := range []struct {
		f    map[string][]string
		want bool
	}{
		{nil, true},
		{map[string][]string{"name": {"front"}}, true},
		{map[string][]string{"name": {"back", "end"}}, true},
		{map[string][]string{"name": {"back"}}, false},
		{map[string][]string{"id": {"abc"}}, true},
		{map[string][]string{"id": {"bc"}}, false},
		{map[string][]string{"label": {"team"}}, true},
		{map[string][]string{"label": {"team=a"}}, true},
		{map[string][]string{"label": {"team=b"}}, false},
		{map[string][]string{"driver": {"bridge"}, "name": {"front"}}, true},
		{map[string][]string{"driver": {"macvlan"}, "name": {"front"}}, false},
		{map[string][]string{"type": {"custom"}}, true},
		{map[string][]string{"type": {"builtin"}}, false},
	} {
		if got := networkMatches(nr, tc.f); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.f, got, tc.want)
		}
	}
}

type fakeUpdater struct{ got types.ContainerUpdateRequest }

func (f *fakeUpdater) Update(_ context.Context, ref string, req *types.ContainerUpdateRequest) (*types.ContainerUpdateResponse, error) {
	if ref != "c1" {
		return nil, fmt.Errorf("no such container %s: %w", ref, errdefs.ErrNotFound)
	}
	if req.Memory != 0 {
		return nil, fmt.Errorf("memory: %w", errdefs.ErrNotImplemented)
	}
	f.got = *req
	return &types.ContainerUpdateResponse{Warnings: []string{}}, nil
}

func TestContainerUpdate(t *testing.T) {
	f := &fakeUpdater{}
	srv := New(nil, nil, nil, nil, nil, types.Version{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv.SetUpdater(f)
	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{"/containers/c1/update", `{"EstibaEgressRate":"10mbit","EstibaIngressBurst":"32k"}`, 200},
		{"/containers/c2/update", `{}`, 404},
		{"/containers/c1/update", `{"Memory":1000000}`, 501},
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("POST", tc.path, strings.NewReader(tc.body)))
		if rec.Code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.path, tc.body, rec.Code, rec.Body, tc.code)
		}
	}
	if f.got.EstibaEgressRate != "10mbit" || f.got.EstibaIngressBurst != "32k" {
		t.Fatalf("extension fields not decoded: %+v", f.got.Bandwidth)
	}
}
