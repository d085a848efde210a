// Package api serves the Docker Engine API over a unix socket. Handlers only
// decode requests, call the engine through small interfaces and encode
// answers; error classes become HTTP statuses here and nowhere else.
package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
)

// Server is the HTTP side of the engine.
type Server struct {
	containers Containers
	execs      Execs
	images     Images
	system     System
	volumes    Volumes
	version    types.Version
	log        *slog.Logger
	mux        *http.ServeMux
}

// New builds the server and its routes; vol may be nil (volume endpoints
// then answer 501).
func New(c Containers, e Execs, i Images, s System, vol Volumes, v types.Version, log *slog.Logger) *Server {
	srv := &Server{containers: c, execs: e, images: i, system: s, volumes: vol, version: v, log: log, mux: http.NewServeMux()}
	srv.routes()
	return srv
}

// ListenUnix listens on path, replacing a stale socket, mode 0660 as
// Docker's (root and the socket's group only).
func ListenUnix(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return l, nil
}

// Serve answers on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

var versionPrefix = regexp.MustCompile(`^/v(\d+\.\d+)(/.*)$`)

// ServeHTTP strips the /v1.xx prefix (refusing versions newer than ours)
// and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		if versionLess(types.APIVersion, m[1]) {
			writeError(w, fmt.Errorf("client version %s is too new. Maximum supported API version is %s: %w", m[1], types.APIVersion, errdefs.ErrInvalid))
			return
		}
		r.URL.Path = m[2]
	}
	w.Header().Set("Api-Version", types.APIVersion)
	w.Header().Set("Server", "estiba/"+s.version.Version)
	s.log.Debug("api", "method", r.Method, "path", r.URL.Path)
	s.mux.ServeHTTP(w, r)
}

func versionLess(a, b string) bool {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := 0; i < 2; i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return false
}

type handler func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(pattern string, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			// A bug in one handler answers that request with a 500 and
			// its message, never a dropped connection.
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("api panic", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				writeError(w, fmt.Errorf("internal error in %s %s: %v", r.Method, r.URL.Path, p))
			}
		}()
		if err := h(w, r); err != nil {
			s.log.Debug("api error", "path", r.URL.Path, "err", err)
			writeError(w, err)
		}
	})
}

// statusOf is the only place error classes become HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, errdefs.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, errdefs.ErrNotModified):
		return http.StatusNotModified
	case errors.Is(err, errdefs.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errdefs.ErrForbidden):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	code := statusOf(err)
	if code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, types.ErrorResponse{Message: errMessage(err)})
}

// errMessage drops the trailing class name the wrapping added (": not
// found"), so the CLI prints what Docker would.
func errMessage(err error) string {
	msg := err.Error()
	for _, c := range []error{errdefs.ErrNotFound, errdefs.ErrConflict, errdefs.ErrInvalid, errdefs.ErrNotModified, errdefs.ErrNotImplemented,
		errdefs.ErrUnauthorized, errdefs.ErrForbidden} {
		msg = strings.TrimSuffix(msg, ": "+c.Error())
	}
	return msg
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// maxJSONBody bounds a JSON request body. Decoded, a create request takes
// some 20 times its size in the daemon and again in the monitor (a 64 MiB
// environment grew the daemon by 1.2 GB); no legitimate request comes near
// this (the kernel takes at most 2 MiB of arguments and environment).
const maxJSONBody = 8 << 20

func decodeBody(r *http.Request, v any) error {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	if r.ContentLength > maxJSONBody {
		return fmt.Errorf("request body of %d bytes is over the limit of %d: %w", r.ContentLength, maxJSONBody, errdefs.ErrInvalid)
	}
	lr := &io.LimitedReader{R: r.Body, N: maxJSONBody + 1}
	err := json.NewDecoder(lr).Decode(v)
	if lr.N == 0 {
		return fmt.Errorf("request body is over the limit of %d bytes: %w", maxJSONBody, errdefs.ErrInvalid)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("decode request body: %v: %w", err, errdefs.ErrInvalid)
	}
	return nil
}

func boolParam(r *http.Request, name string) bool {
	v := r.URL.Query().Get(name)
	return v == "1" || strings.EqualFold(v, "true")
}

func intParam(r *http.Request, name string) (*int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", name, v, errdefs.ErrInvalid)
	}
	return &n, nil
}

// filtersParam decodes the filters parameter in both of Docker's forms:
// {"name":["a"]} and the older {"name":{"a":true}}.
func filtersParam(r *http.Request) (map[string][]string, error) {
	raw := r.URL.Query().Get("filters")
	if raw == "" {
		return nil, nil
	}
	var list map[string][]string
	if err := json.Unmarshal([]byte(raw), &list); err == nil {
		return list, nil
	}
	var set map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &set); err != nil {
		return nil, fmt.Errorf("filters %q: %v: %w", raw, err, errdefs.ErrInvalid)
	}
	out := map[string][]string{}
	for k, vs := range set {
		for v, on := range vs {
			if on {
				out[k] = append(out[k], v)
			}
		}
	}
	return out, nil
}

// hijack takes over the connection for attach and exec, answering 101 when
// the client asked for an upgrade (docker CLI does) and 200 otherwise, with
// Docker's raw-stream content type.
func hijack(w http.ResponseWriter, r *http.Request, tty bool) (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("connection cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	ctype := "application/vnd.docker.multiplexed-stream"
	if tty {
		ctype = "application/vnd.docker.raw-stream"
	}
	if r.Header.Get("Upgrade") != "" {
		fmt.Fprintf(rw, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", ctype)
	} else {
		fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", ctype)
	}
	if err := rw.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, rw, nil
}

// hijackedConn reads through the buffered reader the HTTP server may have
// filled, and writes straight to the socket.
type hijackedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c hijackedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes so the client sees EOF on output while it may
// still be sending stdin.
func (c hijackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// flushWriter flushes after every write, for streamed answers.
type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func newFlushWriter(w http.ResponseWriter) io.Writer {
	f, _ := w.(http.Flusher)
	return &flushWriter{w: w, f: f}
}

func (fw *flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if fw.f != nil {
		fw.f.Flush()
	}
	return n, err
}
