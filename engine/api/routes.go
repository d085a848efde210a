package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/estiba/estiba/engine/api/detach"
	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
)

func (s *Server) routes() {
	s.handle("GET /_ping", s.ping)
	s.handle("HEAD /_ping", s.ping)
	s.handle("GET /version", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, 200, s.version)
		return nil
	})
	s.handle("GET /info", func(w http.ResponseWriter, r *http.Request) error {
		info, err := s.system.Info(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, 200, info)
		return nil
	})
	s.handle("GET /events", s.events)
	s.handle("GET /system/df", func(w http.ResponseWriter, r *http.Request) error {
		du, err := s.system.DiskUsage(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, 200, du)
		return nil
	})
	// estiba has no builder (POST /build answers 501), so there is never a
	// build cache: docker system prune asks for this and gets nothing.
	s.handle("POST /build/prune", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, 200, map[string]any{"CachesDeleted": []string{}, "SpaceReclaimed": 0})
		return nil
	})
	s.containerRoutes()
	s.volumeRoutes()
	s.execRoutes()
	s.imageRoutes()
	s.imageExtraRoutes()
	s.handle("/", func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("%s %s is not supported by estiba: %w", r.Method, r.URL.Path, errdefs.ErrNotImplemented)
	})
}

func (s *Server) volumeRoutes() {
	if s.volumes == nil {
		return
	}
	s.handle("GET /volumes", func(w http.ResponseWriter, r *http.Request) error {
		list, err := s.volumes.VolumeList(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, 200, map[string]any{"Volumes": list, "Warnings": []string{}})
		return nil
	})
	s.handle("POST /volumes/create", func(w http.ResponseWriter, r *http.Request) error {
		var req struct{ Name string }
		if err := decodeBody(r, &req); err != nil {
			return err
		}
		v, err := s.volumes.VolumeCreate(r.Context(), req.Name)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, v)
		return nil
	})
	s.handle("GET /volumes/{name}", func(w http.ResponseWriter, r *http.Request) error {
		v, err := s.volumes.VolumeInspect(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		writeJSON(w, 200, v)
		return nil
	})
	s.handle("DELETE /volumes/{name}", s.noContent(func(r *http.Request) error {
		return s.volumes.VolumeRemove(r.Context(), r.PathValue("name"), boolParam(r, "force"))
	}))
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	w.Header().Set("Ostype", runtime.GOOS)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		w.WriteHeader(200)
		return nil
	}
	io.WriteString(w, "OK")
	return nil
}

func (s *Server) containerRoutes() {
	s.handle("POST /containers/create", s.containerCreate)
	s.handle("GET /containers/json", s.containerList)
	s.handle("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) error {
		c, err := s.containers.Inspect(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, 200, c)
		return nil
	})
	s.handle("POST /containers/{id}/start", s.noContent(func(r *http.Request) error {
		return s.containers.Start(r.Context(), r.PathValue("id"))
	}))
	s.handle("POST /containers/{id}/stop", s.noContent(func(r *http.Request) error {
		t, err := intParam(r, "t")
		if err != nil {
			return err
		}
		return s.containers.Stop(r.Context(), r.PathValue("id"), t, r.URL.Query().Get("signal"))
	}))
	s.handle("POST /containers/{id}/restart", s.noContent(func(r *http.Request) error {
		t, err := intParam(r, "t")
		if err != nil {
			return err
		}
		return s.containers.Restart(r.Context(), r.PathValue("id"), t)
	}))
	s.handle("POST /containers/{id}/kill", s.noContent(func(r *http.Request) error {
		return s.containers.Kill(r.Context(), r.PathValue("id"), r.URL.Query().Get("signal"))
	}))
	s.handle("POST /containers/{id}/pause", s.noContent(func(r *http.Request) error {
		return s.containers.Pause(r.Context(), r.PathValue("id"))
	}))
	s.handle("POST /containers/{id}/unpause", s.noContent(func(r *http.Request) error {
		return s.containers.Unpause(r.Context(), r.PathValue("id"))
	}))
	s.handle("DELETE /containers/{id}", s.noContent(func(r *http.Request) error {
		if boolParam(r, "link") {
			return fmt.Errorf("links are not supported: %w", errdefs.ErrNotImplemented)
		}
		return s.containers.Remove(r.Context(), r.PathValue("id"), boolParam(r, "force"))
	}))
	s.handle("POST /containers/{id}/resize", s.noContent(func(r *http.Request) error {
		h, w, err := sizeParams(r)
		if err != nil {
			return err
		}
		return s.containers.Resize(r.Context(), r.PathValue("id"), h, w)
	}))
	s.handle("POST /containers/{id}/wait", s.containerWait)
	s.handle("GET /containers/{id}/logs", s.containerLogs)
	s.handle("POST /containers/{id}/attach", s.containerAttach)
	s.handle("GET /containers/{id}/top", func(w http.ResponseWriter, r *http.Request) error {
		top, err := s.containers.Top(r.Context(), r.PathValue("id"), r.URL.Query().Get("ps_args"))
		if err != nil {
			return err
		}
		writeJSON(w, 200, top)
		return nil
	})
	s.handle("GET /containers/{id}/stats", func(w http.ResponseWriter, r *http.Request) error {
		stream := r.URL.Query().Get("stream") == "" || boolParam(r, "stream")
		w.Header().Set("Content-Type", "application/json")
		return s.containers.Stats(r.Context(), r.PathValue("id"), stream, newFlushWriter(w))
	})
	s.handle("POST /containers/prune", func(w http.ResponseWriter, r *http.Request) error {
		rep, err := s.containers.Prune(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, 200, rep)
		return nil
	})
}

func (s *Server) noContent(fn func(r *http.Request) error) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := fn(r); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func sizeParams(r *http.Request) (uint16, uint16, error) {
	h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	w, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad terminal size h=%q w=%q: %w", r.URL.Query().Get("h"), r.URL.Query().Get("w"), errdefs.ErrInvalid)
	}
	return uint16(h), uint16(w), nil
}

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) error {
	var req types.ContainerCreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	resp, err := s.containers.Create(r.Context(), r.URL.Query().Get("name"), &req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	opts := ListOptions{All: boolParam(r, "all"), Filters: f, Limit: -1}
	if n, err := intParam(r, "limit"); err != nil {
		return err
	} else if n != nil && *n > 0 {
		opts.Limit = *n
	}
	list, err := s.containers.List(r.Context(), opts)
	if err != nil {
		return err
	}
	if list == nil {
		list = []types.ContainerSummary{}
	}
	writeJSON(w, 200, list)
	return nil
}

func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) error {
	cond := r.URL.Query().Get("condition")
	switch cond {
	case "", "not-running", "next-exit", "removed":
	default:
		return fmt.Errorf("invalid condition %q: %w", cond, errdefs.ErrInvalid)
	}
	ch, err := s.containers.Wait(r.Context(), r.PathValue("id"), cond)
	if err != nil {
		return err
	}
	// Headers go out at once: the CLI waits for them before starting the
	// container (docker run), then reads the body at exit.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	select {
	case resp := <-ch:
		json.NewEncoder(w).Encode(resp)
	case <-r.Context().Done():
	}
	return nil
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := LogOptions{Follow: boolParam(r, "follow"), Stdout: boolParam(r, "stdout"), Stderr: boolParam(r, "stderr"),
		Timestamps: boolParam(r, "timestamps"), Tail: -1}
	if !opts.Stdout && !opts.Stderr {
		return fmt.Errorf("you must choose at least one stream: %w", errdefs.ErrInvalid)
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return fmt.Errorf("tail=%q: %w", t, errdefs.ErrInvalid)
		}
		opts.Tail = n
	}
	var err error
	if opts.Since, err = timeParam(q.Get("since")); err != nil {
		return err
	}
	if opts.Until, err = timeParam(q.Get("until")); err != nil {
		return err
	}
	// Inspect first so a missing container is a 404, not a broken stream.
	c, err := s.containers.Inspect(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	ctype := "application/vnd.docker.multiplexed-stream"
	if c.Config.Tty {
		ctype = "application/vnd.docker.raw-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(200)
	err = s.containers.Logs(r.Context(), c.ID, opts, newFlushWriter(w))
	if err != nil {
		s.log.Debug("logs", "id", c.ID, "err", err)
	}
	return nil
}

// timeParam parses Docker's since/until: unix seconds with optional
// fraction.
func timeParam(v string) (time.Time, error) {
	if v == "" || v == "0" {
		return time.Time{}, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", v, errdefs.ErrInvalid)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}

func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) error {
	c, err := s.containers.Inspect(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	// A body would otherwise reach the container as stdin.
	io.Copy(io.Discard, r.Body)
	keys, err := detach.Parse(r.URL.Query().Get("detachKeys"))
	if err != nil {
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalid)
	}
	opts := AttachOptions{Stdin: boolParam(r, "stdin"), Stdout: boolParam(r, "stdout"), Stderr: boolParam(r, "stderr"),
		Stream: boolParam(r, "stream"), Logs: boolParam(r, "logs"), DetachKeys: keys}
	conn, rw, err := hijack(w, r, c.Config.Tty)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The request context dies with the hijack; the attachment lives as
	// long as the connection or the container's output.
	if err := s.containers.Attach(r.Context(), c.ID, opts, hijackedConn{Conn: conn, r: rw.Reader}); err != nil {
		s.log.Debug("attach", "id", c.ID, "err", err)
	}
	return nil
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	since, err := timeParam(r.URL.Query().Get("since"))
	if err != nil {
		return err
	}
	until, err := timeParam(r.URL.Query().Get("until"))
	if err != nil {
		return err
	}
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	ch, err := s.system.Events(r.Context(), since, until, f)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	fw := newFlushWriter(w)
	fw.Write(nil)
	enc := json.NewEncoder(fw)
	for ev := range ch {
		if err := enc.Encode(ev); err != nil {
			return nil
		}
	}
	return nil
}

func (s *Server) execRoutes() {
	s.handle("POST /containers/{id}/exec", func(w http.ResponseWriter, r *http.Request) error {
		var cfg types.ExecConfig
		if err := decodeBody(r, &cfg); err != nil {
			return err
		}
		if len(cfg.Cmd) == 0 {
			return fmt.Errorf("no exec command specified: %w", errdefs.ErrInvalid)
		}
		if _, err := detach.Parse(cfg.DetachKeys); err != nil {
			return fmt.Errorf("%v: %w", err, errdefs.ErrInvalid)
		}
		id, err := s.execs.ExecCreate(r.Context(), r.PathValue("id"), &cfg)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, types.IDResponse{ID: id})
		return nil
	})
	s.handle("POST /exec/{id}/start", func(w http.ResponseWriter, r *http.Request) error {
		var cfg types.ExecStartConfig
		if err := decodeBody(r, &cfg); err != nil {
			return err
		}
		if _, err := s.execs.ExecInspect(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		if cfg.Detach {
			if err := s.execs.ExecStart(r.Context(), r.PathValue("id"), true, nil); err != nil {
				return err
			}
			w.WriteHeader(200)
			return nil
		}
		conn, rw, err := hijack(w, r, cfg.Tty)
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := s.execs.ExecStart(r.Context(), r.PathValue("id"), false, hijackedConn{Conn: conn, r: rw.Reader}); err != nil {
			fmt.Fprintf(conn, "estiba: exec: %v\r\n", err)
		}
		return nil
	})
	s.handle("GET /exec/{id}/json", func(w http.ResponseWriter, r *http.Request) error {
		e, err := s.execs.ExecInspect(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, 200, e)
		return nil
	})
	s.handle("POST /exec/{id}/resize", s.noContent(func(r *http.Request) error {
		h, w, err := sizeParams(r)
		if err != nil {
			return err
		}
		return s.execs.ExecResize(r.Context(), r.PathValue("id"), h, w)
	}))
}

func (s *Server) imageRoutes() {
	s.handle("GET /images/json", func(w http.ResponseWriter, r *http.Request) error {
		list, err := s.images.List(r.Context())
		if err != nil {
			return err
		}
		if list == nil {
			list = []types.ImageSummary{}
		}
		writeJSON(w, 200, list)
		return nil
	})
	s.handle("GET /images/{name...}", func(w http.ResponseWriter, r *http.Request) error {
		name, ok := cutSuffix(r.PathValue("name"), "/json")
		if !ok {
			return s.imageGetExtra(w, r)
		}
		img, err := s.images.Inspect(r.Context(), name)
		if err != nil {
			return err
		}
		writeJSON(w, 200, img)
		return nil
	})
	s.handle("POST /images/create", s.imageCreate)
	s.handle("POST /images/load", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		return s.streamErr(w, s.images.Load(r.Context(), r.Body, newFlushWriter(w)))
	})
	s.handle("DELETE /images/{name...}", func(w http.ResponseWriter, r *http.Request) error {
		items, err := s.images.Remove(r.Context(), r.PathValue("name"), boolParam(r, "force"))
		if err != nil {
			return err
		}
		writeJSON(w, 200, items)
		return nil
	})
	s.handle("POST /images/{name...}", func(w http.ResponseWriter, r *http.Request) error {
		name, ok := cutSuffix(r.PathValue("name"), "/tag")
		if !ok {
			return s.imagePostExtra(w, r)
		}
		target := r.URL.Query().Get("repo")
		if tag := r.URL.Query().Get("tag"); tag != "" {
			target += ":" + tag
		}
		if err := s.images.Tag(r.Context(), name, target); err != nil {
			return err
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	})
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return "", false
}

// imageCreate is both pull (fromImage) and import (fromSrc=-).
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ref := q.Get("fromImage")
	if ref == "" && q.Get("fromSrc") == "" {
		return fmt.Errorf("fromImage or fromSrc is required: %w", errdefs.ErrInvalid)
	}
	if q.Get("fromSrc") != "" && q.Get("fromSrc") != "-" {
		return fmt.Errorf("import from a URL is not supported, only fromSrc=-: %w", errdefs.ErrNotImplemented)
	}
	if q.Get("fromSrc") == "-" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		fw := newFlushWriter(w)
		target := q.Get("repo")
		if tag := q.Get("tag"); tag != "" {
			target += ":" + tag
		}
		return s.streamErr(w, s.images.Import(r.Context(), r.Body, target, fw))
	}
	if tag := q.Get("tag"); tag != "" {
		if len(tag) > 7 && tag[:7] == "sha256:" {
			ref += "@" + tag
		} else {
			ref += ":" + tag
		}
	}
	// The status line waits for the first progress message: a pull that
	// fails before any (unknown repository or manifest, refused
	// credential) is answered with its own status, as Docker does.
	lw := &lazyStream{w: w}
	err := s.images.Pull(authContext(r), ref, lw)
	if !lw.started {
		return err
	}
	return s.streamErr(w, err)
}

// lazyStream starts a 200 JSON stream on its first write.
type lazyStream struct {
	w       http.ResponseWriter
	fw      io.Writer
	started bool
}

func (l *lazyStream) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/json")
		l.w.WriteHeader(200)
		l.fw = newFlushWriter(l.w)
	}
	return l.fw.Write(p)
}

// streamErr reports an error inside an already-started progress stream,
// the way the CLI expects (errorDetail in a JSON message).
func (s *Server) streamErr(w http.ResponseWriter, err error) error {
	if err == nil {
		return nil
	}
	msg := types.JSONMessage{ErrorMessage: errMessage(err)}
	msg.Error = &struct {
		Message string `json:"message"`
	}{errMessage(err)}
	json.NewEncoder(w).Encode(msg)
	return nil
}
