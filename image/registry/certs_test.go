package registry

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadTLSFilesErrors(t *testing.T) {
	tests := map[string]map[string]string{
		"not a certificate": {"ca.crt": "garbage"},
		"key alone":         {"client.key": "x"},
		"bad pair":          {"client.cert": "x", "client.key": "y"},
	}
	for name, files := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for f, data := range files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			entries, _ := os.ReadDir(dir)
			if err := loadTLSFiles(&tls.Config{}, dir, entries); err == nil {
				t.Fatal("accepted")
			} else if name != "bad pair" && !errors.Is(err, ErrInvalid) {
				t.Fatalf("%v, want ErrInvalid", err)
			}
		})
	}
}
