package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Store persists the manager's records. The engine backs it with its bbolt
// database; FileStore serves tests and standalone use. Two kinds are used:
// "network" (key: network ID) and "endpoint" (key: network ID + "/" +
// container ID). IPAM keeps no records of its own: the addresses in use are
// those of the stored endpoints, so an address is never handed out twice
// after a restart as long as Put returned before Attach did.
type Store interface {
	Put(kind, key string, value []byte) error
	Delete(kind, key string) error // deleting a missing key is no error
	List(kind string) (map[string][]byte, error)
}

// FileStore keeps one file per record under Dir/<kind>/, written atomically
// (temp file + rename) so a crash leaves the old or the new record.
type FileStore struct {
	Dir string
}

func (s FileStore) path(kind, key string) (string, error) {
	if kind == "" || strings.ContainsAny(kind, "/.") {
		return "", fmt.Errorf("store kind %q: %w", kind, ErrInvalid)
	}
	// Keys contain "/" (network/container): flatten it.
	k := strings.ReplaceAll(key, "/", "~")
	if k == "" || strings.HasPrefix(k, ".") {
		return "", fmt.Errorf("store key %q: %w", key, ErrInvalid)
	}
	return filepath.Join(s.Dir, kind, k), nil
}

func (s FileStore) Put(kind, key string, value []byte) error {
	p, err := s.path(kind, key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, value, 0o600); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func (s FileStore) Delete(kind, key string) error {
	p, err := s.path(kind, key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func (s FileStore) List(kind string) (map[string][]byte, error) {
	dir := filepath.Join(s.Dir, kind)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	out := make(map[string][]byte, len(ents))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out[strings.ReplaceAll(e.Name(), "~", "/")] = b
	}
	return out, nil
}
