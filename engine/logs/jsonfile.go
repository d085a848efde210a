// Package logs writes and reads container output in Docker's json-file
// format: one JSON object per line, {"log":"…","stream":"stdout","time":"…"},
// rotated by size into <path>.1 … <path>.<max-file - 1>.
package logs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// Entry is one line of output.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// maxLine bounds a line held in memory: a longer one is written in pieces,
// as Docker does, so a container printing no newline cannot grow us.
const maxLine = 16 * 1024

// Writer appends entries to a json-file log, rotating it by size.
type Writer struct {
	path     string
	maxSize  int64 // 0: never rotate
	maxFiles int   // files kept including the current one (>= 1)

	mu   sync.Mutex // guards everything below
	f    *os.File
	size int64
}

// NewWriter opens (appends to) the log at path.
func NewWriter(path string, maxSize int64, maxFiles int) (*Writer, error) {
	if maxFiles < 1 {
		maxFiles = 1
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat log: %w", err)
	}
	return &Writer{path: path, maxSize: maxSize, maxFiles: maxFiles, f: f, size: st.Size()}, nil
}

// Write appends one entry.
func (w *Writer) Write(e Entry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return os.ErrClosed
	}
	if w.maxSize > 0 && w.size > 0 && w.size+int64(len(line)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(line)
	w.size += int64(n)
	return err
}

// rotate shifts path.N-1 → path.N … path → path.1 and starts a new file.
// Readers following the old file keep their descriptor and finish it
// before moving to the new one (see Follow).
func (w *Writer) rotate() error {
	if w.maxFiles == 1 {
		if err := w.f.Truncate(0); err != nil {
			return fmt.Errorf("truncate log: %w", err)
		}
		w.size = 0
		return nil
	}
	for i := w.maxFiles - 1; i > 1; i-- {
		os.Rename(w.path+"."+strconv.Itoa(i-1), w.path+"."+strconv.Itoa(i))
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("reopen log: %w", err)
	}
	w.f.Close()
	w.f, w.size = f, 0
	return nil
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// LineSplitter turns a byte stream into entries at newlines.
type LineSplitter struct {
	Stream string
	Emit   func(Entry) error
	buf    []byte
}

// Write implements io.Writer.
func (s *LineSplitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.buf = append(s.buf, p...)
			if len(s.buf) >= maxLine {
				if err := s.flush(); err != nil {
					return 0, err
				}
			}
			break
		}
		s.buf = append(s.buf, p[:i+1]...)
		p = p[i+1:]
		if err := s.flush(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Flush emits a trailing partial line (at EOF).
func (s *LineSplitter) Flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	return s.flush()
}

func (s *LineSplitter) flush() error {
	e := Entry{Log: string(s.buf), Stream: s.Stream, Time: time.Now().UTC()}
	s.buf = s.buf[:0]
	return s.Emit(e)
}
