package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
)

// ImagesExtra is the rest of Docker's image API: push, save, history,
// prune and login. An Images without it answers those endpoints 501.
type ImagesExtra interface {
	// Push uploads ref (name[:tag]) to its registry, writing JSONMessage
	// progress lines to progress; the credential, if any, is in ctx
	// (RegistryAuth).
	Push(ctx context.Context, ref string, progress io.Writer) error
	// Save writes the images as one docker-archive.
	Save(ctx context.Context, refs []string, w io.Writer) error
	History(ctx context.Context, ref string) ([]types.ImageHistoryItem, error)
	// Prune deletes unused images: dangling only unless all.
	Prune(ctx context.Context, all bool) (*types.PruneReport, error)
	// Login checks the credential against its registry.
	Login(ctx context.Context, auth types.AuthConfig) (*types.AuthResponse, error)
}

type authKey struct{}

// WithRegistryAuth returns ctx carrying a client's registry credential.
func WithRegistryAuth(ctx context.Context, a types.AuthConfig) context.Context {
	return context.WithValue(ctx, authKey{}, a)
}

// RegistryAuth is the credential the client sent with the request, if any.
func RegistryAuth(ctx context.Context) (types.AuthConfig, bool) {
	a, ok := ctx.Value(authKey{}).(types.AuthConfig)
	return a, ok
}

// DecodeRegistryAuth decodes an X-Registry-Auth header: base64url (Docker's
// encoding, padded or not; plain base64 is accepted too) JSON AuthConfig.
func DecodeRegistryAuth(h string) (types.AuthConfig, error) {
	var a types.AuthConfig
	h = strings.TrimSpace(h)
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return a, fmt.Errorf("X-Registry-Auth is not base64: %v: %w", err, errdefs.ErrInvalid)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("X-Registry-Auth is not an auth config: %v: %w", err, errdefs.ErrInvalid)
	}
	return a, nil
}

// authContext is r's context with its X-Registry-Auth credential; a header
// that does not decode is ignored, as Docker does (the pull or push then
// runs anonymously or with the daemon's own credentials).
func authContext(r *http.Request) context.Context {
	h := r.Header.Get("X-Registry-Auth")
	if h == "" {
		return r.Context()
	}
	a, err := DecodeRegistryAuth(h)
	if err != nil {
		return r.Context()
	}
	return WithRegistryAuth(r.Context(), a)
}

func (s *Server) extra(what string) (ImagesExtra, error) {
	x, ok := s.images.(ImagesExtra)
	if !ok {
		return nil, fmt.Errorf("%s: the image layer of this build does not provide it: %w", what, errdefs.ErrNotImplemented)
	}
	return x, nil
}

func (s *Server) imageExtraRoutes() {
	s.handle("POST /auth", s.login)
	s.handle("GET /images/get", func(w http.ResponseWriter, r *http.Request) error {
		names := r.URL.Query()["names"]
		if len(names) == 0 {
			return fmt.Errorf("names is required: %w", errdefs.ErrInvalid)
		}
		return s.imageSave(w, r, names)
	})
	s.handle("POST /images/prune", s.imagePrune)
}

// imageGetExtra serves GET /images/{name}/history and /images/{name}/get
// (names may hold slashes, so the generic route dispatches here).
func (s *Server) imageGetExtra(w http.ResponseWriter, r *http.Request) error {
	p := r.PathValue("name")
	if name, ok := cutSuffix(p, "/history"); ok {
		x, err := s.extra("image history")
		if err != nil {
			return err
		}
		h, err := x.History(r.Context(), name)
		if err != nil {
			return err
		}
		writeJSON(w, 200, h)
		return nil
	}
	if name, ok := cutSuffix(p, "/get"); ok {
		return s.imageSave(w, r, []string{name})
	}
	return fmt.Errorf("GET /images/%s: %w", p, errdefs.ErrNotImplemented)
}

// imagePostExtra serves POST /images/{name}/push.
func (s *Server) imagePostExtra(w http.ResponseWriter, r *http.Request) error {
	p := r.PathValue("name")
	name, ok := cutSuffix(p, "/push")
	if !ok {
		return fmt.Errorf("POST /images/%s: %w", p, errdefs.ErrNotImplemented)
	}
	x, err := s.extra("image push")
	if err != nil {
		return err
	}
	if tag := r.URL.Query().Get("tag"); tag != "" {
		name += ":" + tag
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	return s.streamErr(w, x.Push(authContext(r), name, newFlushWriter(w)))
}

// countingWriter knows whether the response has started, so an error
// before the first byte still gets its HTTP status.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (s *Server) imageSave(w http.ResponseWriter, r *http.Request, names []string) error {
	x, err := s.extra("image save")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	cw := &countingWriter{w: w}
	err = x.Save(r.Context(), names, cw)
	if err != nil && cw.n > 0 {
		// Too late for a status: cut the stream so the client sees a
		// truncated archive rather than a complete-looking one.
		s.log.Debug("image save failed mid-stream", "err", err)
		panic(http.ErrAbortHandler)
	}
	if err != nil {
		w.Header().Del("Content-Type")
	}
	return err
}

func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request) error {
	x, err := s.extra("image prune")
	if err != nil {
		return err
	}
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	all, err := danglingFilter(f)
	if err != nil {
		return err
	}
	rep, err := x.Prune(r.Context(), all)
	if err != nil {
		return err
	}
	writeJSON(w, 200, rep)
	return nil
}

// danglingFilter reads prune's filters: dangling=false prunes all unused
// images (docker image prune -a); other filters are refused.
func danglingFilter(f map[string][]string) (all bool, err error) {
	for k, vals := range f {
		if k != "dangling" {
			return false, fmt.Errorf("image prune filter %q is not supported (only dangling): %w", k, errdefs.ErrNotImplemented)
		}
		for _, v := range vals {
			switch strings.ToLower(v) {
			case "true", "1":
			case "false", "0":
				all = true
			default:
				return false, fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalid)
			}
		}
	}
	return all, nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	x, err := s.extra("login")
	if err != nil {
		return err
	}
	var a types.AuthConfig
	if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
		return fmt.Errorf("auth config: %v: %w", err, errdefs.ErrInvalid)
	}
	resp, err := x.Login(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, 200, resp)
	return nil
}
