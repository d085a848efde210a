package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"time"
)

// ReadOptions select entries.
type ReadOptions struct {
	Tail   int // -1: all
	Since  time.Time
	Until  time.Time
	Follow bool
	// Done, when Follow is set, closes once no more output can come (the
	// container stopped); the reader then drains what is left and returns.
	Done <-chan struct{}
	// Poll is how often a follower looks for new data (default 100ms).
	Poll time.Duration
}

// Read calls fn for every entry of the log at path (with its rotated files,
// oldest first) that opts select, then follows if asked.
func Read(ctx context.Context, path string, maxFiles int, opts ReadOptions, fn func(Entry) error) error {
	var tail []Entry
	keep := func(e Entry) error {
		if (!opts.Since.IsZero() && e.Time.Before(opts.Since)) || (!opts.Until.IsZero() && e.Time.After(opts.Until)) {
			return nil
		}
		if opts.Tail < 0 {
			return fn(e)
		}
		tail = append(tail, e)
		if len(tail) > opts.Tail {
			tail = tail[1:]
		}
		return nil
	}
	for i := maxFiles - 1; i >= 1; i-- {
		f, err := os.Open(path + "." + strconv.Itoa(i))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return err
		}
		err = (&lineReader{f: f}).drain(keep)
		f.Close()
		if err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && opts.Follow {
		f, err = waitOpen(ctx, path, opts)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	lr := &lineReader{f: f}
	defer func() { lr.f.Close() }()
	if err := lr.drain(keep); err != nil {
		return err
	}
	for _, e := range tail {
		if err := fn(e); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	err = lr.follow(ctx, path, opts, func(e Entry) error {
		if !opts.Until.IsZero() && e.Time.After(opts.Until) {
			return io.EOF
		}
		return fn(e)
	})
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func waitOpen(ctx context.Context, path string, opts ReadOptions) (*os.File, error) {
	for {
		f, err := os.Open(path)
		if !errors.Is(err, os.ErrNotExist) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-opts.Done:
			return nil, err
		case <-time.After(poll(opts)):
		}
	}
}

func poll(o ReadOptions) time.Duration {
	if o.Poll > 0 {
		return o.Poll
	}
	return 100 * time.Millisecond
}

// lineReader yields whole lines; a last line without its newline is a write
// in progress and is carried until the rest arrives.
type lineReader struct {
	f     *os.File
	carry []byte
	buf   []byte
}

func (l *lineReader) drain(fn func(Entry) error) error {
	if l.buf == nil {
		l.buf = make([]byte, 32*1024)
	}
	for {
		n, err := l.f.Read(l.buf)
		if n > 0 {
			l.carry = append(l.carry, l.buf[:n]...)
			if err := l.emit(fn); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (l *lineReader) emit(fn func(Entry) error) error {
	for {
		i := bytes.IndexByte(l.carry, '\n')
		if i < 0 {
			return nil
		}
		line := l.carry[:i+1]
		l.carry = l.carry[i+1:]
		var e Entry
		if json.Unmarshal(line, &e) != nil {
			continue // a line torn by a crash: skip it, keep the rest
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// follow polls for new lines; when path names another file (rotation), the
// old file is drained first and then the new one opened, so no line is lost
// or repeated across a rotation.
func (l *lineReader) follow(ctx context.Context, path string, opts ReadOptions, fn func(Entry) error) error {
	done := opts.Done
	for {
		if err := l.drain(fn); err != nil {
			return err
		}
		if rotated(path, l.f) {
			if err := l.drain(fn); err != nil {
				return err
			}
			if nf, err := os.Open(path); err == nil {
				l.f.Close()
				l.f, l.carry = nf, nil
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			// A last pass for output written just before the stop.
			return l.drain(fn)
		case <-time.After(poll(opts)):
		}
	}
}

func rotated(path string, f *os.File) bool {
	a, err1 := os.Stat(path)
	b, err2 := f.Stat()
	return err1 == nil && err2 == nil && !os.SameFile(a, b)
}
