package logs

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func writeLines(t *testing.T, w *Writer, from, to int) {
	t.Helper()
	s := &LineSplitter{Stream: "stdout", Emit: w.Write}
	for i := from; i < to; i++ {
		fmt.Fprintf(s, "line %d\n", i)
	}
}

func collect(t *testing.T, path string, maxFiles int, opts ReadOptions) []string {
	t.Helper()
	var got []string
	err := Read(context.Background(), path, maxFiles, opts, func(e Entry) error {
		got = append(got, e.Log)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRotationAndTail(t *testing.T) {
	tests := []struct {
		name      string
		maxSize   int64
		maxFiles  int
		tail      int
		wantFirst int // first line number read back
		wantN     int
	}{
		{"no rotation", 0, 1, -1, 0, 100},
		{"tail", 0, 1, 5, 95, 5},
		{"rotated keeps newest", 1000, 3, -1, -1, -1},
		{"truncate single file", 1000, 1, -1, -1, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c-json.log")
			w, err := NewWriter(path, tc.maxSize, tc.maxFiles)
			if err != nil {
				t.Fatal(err)
			}
			writeLines(t, w, 0, 100)
			w.Close()
			got := collect(t, path, tc.maxFiles, ReadOptions{Tail: tc.tail})
			if len(got) == 0 || got[len(got)-1] != "line 99\n" {
				t.Fatalf("last line %q", got)
			}
			// Whatever was kept is a contiguous, ordered suffix.
			var first int
			fmt.Sscanf(got[0], "line %d", &first)
			for i, l := range got {
				if l != fmt.Sprintf("line %d\n", first+i) {
					t.Fatalf("line %d = %q", i, l)
				}
			}
			if tc.wantFirst >= 0 && (first != tc.wantFirst || len(got) != tc.wantN) {
				t.Fatalf("first %d n %d, want %d %d", first, len(got), tc.wantFirst, tc.wantN)
			}
			if tc.maxSize > 0 && len(got) >= 100 {
				t.Fatalf("rotation kept everything (%d lines)", len(got))
			}
		})
	}
}

func TestFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, 2000, 5)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	got := make(chan []string)
	go func() {
		var lines []string
		Read(context.Background(), path, 5, ReadOptions{Tail: -1, Follow: true, Done: done, Poll: 5 * time.Millisecond},
			func(e Entry) error { lines = append(lines, e.Log); return nil })
		got <- lines
	}()
	// Small batches with pauses so the follower sees several rotations.
	for i := 0; i < 60; i += 10 {
		writeLines(t, w, i, i+10)
		time.Sleep(20 * time.Millisecond)
	}
	w.Close()
	close(done)
	lines := <-got
	if len(lines) != 60 {
		t.Fatalf("followed %d lines, want 60: %q", len(lines), lines)
	}
	for i, l := range lines {
		if l != fmt.Sprintf("line %d\n", i) {
			t.Fatalf("line %d = %q", i, l)
		}
	}
}

func TestSplitterLongLine(t *testing.T) {
	var got []Entry
	s := &LineSplitter{Stream: "stderr", Emit: func(e Entry) error { got = append(got, e); return nil }}
	s.Write(make([]byte, maxLine+10))
	s.Write([]byte("x\npartial"))
	s.Flush()
	if len(got) != 3 || got[2].Log != "partial" || got[0].Stream != "stderr" {
		t.Fatalf("got %d entries", len(got))
	}
}
