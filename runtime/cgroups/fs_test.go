package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadWriteFile(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("0123456789", 500) // past readRaw's first buffer
	for _, tc := range []struct {
		name, old, value string
	}{
		{"short over longer", "a much longer old value\n", "42"},
		{"long", "", big},
		{"empty", "x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "f"), []byte(tc.old), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := writeFile(dir, "f", tc.value); err != nil {
				t.Fatal(err)
			}
			got, err := readFile(dir, "f")
			if err != nil || got != tc.value {
				t.Errorf("read back %d bytes (%v), want %d", len(got), err, len(tc.value))
			}
		})
	}
	err := writeFile(dir, "missing", "1")
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "not enabled or knob not supported") {
		t.Errorf("write to a missing file: %v", err)
	}
	if _, err := readFile(dir, "missing"); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(dir, "missing")) {
		t.Errorf("read of a missing file: %v", err)
	}
}
