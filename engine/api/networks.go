package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
)

// Networks is what the network endpoints need. Errors carry errdefs
// classes (not found 404, conflict or in use 409, invalid 400).
type Networks interface {
	NetworkList(ctx context.Context) ([]types.NetworkResource, error)
	NetworkInspect(ctx context.Context, ref string) (*types.NetworkResource, error)
	NetworkCreate(ctx context.Context, req *types.NetworkCreateRequest) (*types.NetworkCreateResponse, error)
	NetworkRemove(ctx context.Context, ref string) error
	NetworkConnect(ctx context.Context, ref string, req *types.NetworkConnectRequest) error
	NetworkDisconnect(ctx context.Context, ref string, req *types.NetworkDisconnectRequest) error
	// NetworkPrune removes the networks no container uses; it returns
	// their names.
	NetworkPrune(ctx context.Context) ([]string, error)
}

// SetNetworks serves the network endpoints through n; without it they
// answer 501 (the catch-all route).
func (s *Server) SetNetworks(n Networks) {
	s.handle("GET /networks", func(w http.ResponseWriter, r *http.Request) error { return s.networkList(w, r, n) })
	s.handle("GET /networks/{id}", func(w http.ResponseWriter, r *http.Request) error {
		nr, err := n.NetworkInspect(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, 200, nr)
		return nil
	})
	s.handle("POST /networks/create", func(w http.ResponseWriter, r *http.Request) error {
		var req types.NetworkCreateRequest
		if err := decodeBody(r, &req); err != nil {
			return err
		}
		resp, err := n.NetworkCreate(r.Context(), &req)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, resp)
		return nil
	})
	s.handle("DELETE /networks/{id}", s.noContent(func(r *http.Request) error {
		return n.NetworkRemove(r.Context(), r.PathValue("id"))
	}))
	s.handle("POST /networks/{id}/connect", func(w http.ResponseWriter, r *http.Request) error {
		var req types.NetworkConnectRequest
		if err := decodeBody(r, &req); err != nil {
			return err
		}
		if req.Container == "" {
			return fmt.Errorf("container is required: %w", errdefs.ErrInvalid)
		}
		if err := n.NetworkConnect(r.Context(), r.PathValue("id"), &req); err != nil {
			return err
		}
		w.WriteHeader(200)
		return nil
	})
	s.handle("POST /networks/{id}/disconnect", func(w http.ResponseWriter, r *http.Request) error {
		var req types.NetworkDisconnectRequest
		if err := decodeBody(r, &req); err != nil {
			return err
		}
		if req.Container == "" {
			return fmt.Errorf("container is required: %w", errdefs.ErrInvalid)
		}
		if err := n.NetworkDisconnect(r.Context(), r.PathValue("id"), &req); err != nil {
			return err
		}
		w.WriteHeader(200)
		return nil
	})
	s.handle("POST /networks/prune", func(w http.ResponseWriter, r *http.Request) error {
		if f, err := filtersParam(r); err != nil {
			return err
		} else if len(f) > 0 {
			return fmt.Errorf("network prune filters are not supported: %w", errdefs.ErrNotImplemented)
		}
		names, err := n.NetworkPrune(r.Context())
		if err != nil {
			return err
		}
		if names == nil {
			names = []string{}
		}
		writeJSON(w, 200, types.NetworkPruneReport{NetworksDeleted: names})
		return nil
	})
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request, n Networks) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	for k := range f {
		switch k {
		case "name", "id", "label", "driver", "type", "scope":
		default:
			return fmt.Errorf("invalid filter %q: %w", k, errdefs.ErrInvalid)
		}
	}
	list, err := n.NetworkList(r.Context())
	if err != nil {
		return err
	}
	out := []types.NetworkResource{}
	for _, nr := range list {
		if networkMatches(nr, f) {
			out = append(out, nr)
		}
	}
	writeJSON(w, 200, out)
	return nil
}

// networkMatches applies docker's network filters: every key must match,
// any of a key's values may (name: substring, id: prefix, label: key or
// key=value, driver: exact, type: builtin/custom, scope: local).
func networkMatches(nr types.NetworkResource, f map[string][]string) bool {
	for k, vals := range f {
		ok := false
		for _, v := range vals {
			if filterMatch(nr, k, v) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func filterMatch(nr types.NetworkResource, key, v string) bool {
	switch key {
	case "name":
		return strings.Contains(nr.Name, v)
	case "id":
		return strings.HasPrefix(nr.ID, v)
	case "driver":
		return nr.Driver == v
	case "scope":
		return nr.Scope == v
	case "type":
		builtin := nr.Name == "bridge"
		return (v == "builtin") == builtin && (v == "builtin" || v == "custom")
	case "label":
		lk, lv, hasVal := strings.Cut(v, "=")
		got, ok := nr.Labels[lk]
		return ok && (!hasVal || got == lv)
	}
	return false
}

// Updater changes a running container's settings (estiba: the Bandwidth
// extension only).
type Updater interface {
	Update(ctx context.Context, ref string, req *types.ContainerUpdateRequest) (*types.ContainerUpdateResponse, error)
}

// SetUpdater serves POST /containers/{id}/update through u.
func (s *Server) SetUpdater(u Updater) {
	s.handle("POST /containers/{id}/update", func(w http.ResponseWriter, r *http.Request) error {
		var req types.ContainerUpdateRequest
		if err := decodeBody(r, &req); err != nil {
			return err
		}
		resp, err := u.Update(r.Context(), r.PathValue("id"), &req)
		if err != nil {
			return err
		}
		writeJSON(w, 200, resp)
		return nil
	})
}
