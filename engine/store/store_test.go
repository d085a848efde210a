package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/estiba/estiba/engine/errdefs"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestCreateResolveDelete(t *testing.T) {
	s, _ := open(t)
	a := &Container{ID: "abc123", Name: "web", Created: time.Now(), Phase: PhaseReady}
	if err := s.Create(a, true, 100000, 1<<31); err != nil {
		t.Fatal(err)
	}
	b := &Container{ID: "abd456", Name: "web", Created: time.Now()}
	if err := s.Create(b, false, 0, 0); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("name clash: got %v, want conflict", err)
	}
	b.Name = "db"
	if err := s.Create(b, true, 100000, 1<<31); err != nil {
		t.Fatal(err)
	}
	if a.UsernsBase != 100000 || b.UsernsBase != 100000+UsernsSize {
		t.Fatalf("userns bases %d %d", a.UsernsBase, b.UsernsBase)
	}
	tests := []struct {
		ref, want string
		err       error
	}{
		{"abc123", "abc123", nil},
		{"web", "abc123", nil},
		{"/db", "abd456", nil},
		{"abd", "abd456", nil},
		{"ab", "", errdefs.ErrInvalid},
		{"zz", "", errdefs.ErrNotFound},
	}
	for _, tc := range tests {
		got, err := s.Resolve(tc.ref)
		if got != tc.want || !errors.Is(err, tc.err) && !(err == nil && tc.err == nil) {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %v", tc.ref, got, err, tc.want, tc.err)
		}
	}
	// Freeing the first range lets the next container reuse the hole.
	if err := s.Delete("abc123"); err != nil {
		t.Fatal(err)
	}
	c := &Container{ID: "c", Name: "web"}
	if err := s.Create(c, true, 100000, 1<<31); err != nil {
		t.Fatal(err)
	}
	if c.UsernsBase != 100000 {
		t.Fatalf("hole not reused: %d", c.UsernsBase)
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	s, path := open(t)
	if err := s.Create(&Container{ID: "x", Name: "x"}, false, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update("x", func(c *Container) error { c.State.Status = StatusRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	c, err := s2.Get("x")
	if err != nil || c.State.Status != StatusRunning {
		t.Fatalf("after reopen: %+v %v", c, err)
	}
}

func TestUsernsExhaustion(t *testing.T) {
	s, _ := open(t)
	if err := s.Create(&Container{ID: "a", Name: "a"}, true, 0, UsernsSize-1); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(&Container{ID: "b", Name: "b"}, true, 0, UsernsSize-1); err == nil {
		t.Fatal("second range allocated beyond max")
	}
}

// Concurrent writes share commits; a failing one changes nothing and does
// not fail the others of its group.
func TestGroupCommit(t *testing.T) {
	s, _ := open(t)
	const n = 40
	for i := 0; i < n; i++ {
		c := &Container{ID: fmt.Sprintf("id%02d", i), Name: fmt.Sprintf("c%02d", i), Created: time.Now(), Phase: PhaseCreating}
		if err := s.Create(c, true, 100000, 1<<31); err != nil {
			t.Fatal(err)
		}
	}
	errBad := errors.New("bad")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Update(fmt.Sprintf("id%02d", i), func(c *Container) error {
				c.Phase = PhaseReady
				c.RestartCount++
				if i%5 == 0 {
					return errBad
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		c, err := s.Get(fmt.Sprintf("id%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		want, wantCount, wantErr := PhaseReady, 1, error(nil)
		if i%5 == 0 {
			want, wantCount, wantErr = PhaseCreating, 0, errBad
		}
		if !errors.Is(errs[i], wantErr) || c.Phase != want || c.RestartCount != wantCount {
			t.Errorf("container %d: err %v, phase %s, restarts %d; want %v, %s, %d", i, errs[i], c.Phase, c.RestartCount, wantErr, want, wantCount)
		}
	}
	// Userns ranges stay disjoint when creates share a commit.
	bases := map[uint32]bool{}
	var cwg sync.WaitGroup
	cs := make([]*Container, n)
	for i := range cs {
		cs[i] = &Container{ID: fmt.Sprintf("new%02d", i), Name: fmt.Sprintf("new%02d", i), Created: time.Now()}
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if err := s.Create(cs[i], true, 100000, 1<<31); err != nil {
				t.Error(err)
			}
		}()
	}
	cwg.Wait()
	for _, c := range cs {
		if bases[c.UsernsBase] {
			t.Errorf("userns base %d given twice", c.UsernsBase)
		}
		bases[c.UsernsBase] = true
	}
}

// UpdateOrDelete either writes the record or deletes it with its name and
// id range, as Delete does (an auto-removed container's exit).
func TestUpdateOrDelete(t *testing.T) {
	s, _ := open(t)
	a := &Container{ID: "abc123", Name: "web", Created: time.Now(), Phase: PhaseReady}
	if err := s.Create(a, true, 100000, 1<<31); err != nil {
		t.Fatal(err)
	}
	c, deleted, err := s.UpdateOrDelete(a.ID, func(c *Container) (bool, error) { c.State.ExitCode = 3; return false, nil })
	if err != nil || deleted || c.State.ExitCode != 3 {
		t.Fatalf("update: %v %v %+v", err, deleted, c)
	}
	if got, err := s.Get(a.ID); err != nil || got.State.ExitCode != 3 {
		t.Fatalf("update not stored: %v %+v", err, got)
	}
	if _, deleted, err = s.UpdateOrDelete(a.ID, func(c *Container) (bool, error) { return true, nil }); err != nil || !deleted {
		t.Fatalf("delete: %v %v", err, deleted)
	}
	if _, err := s.Resolve("web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("name survived the delete: %v", err)
	}
	b := &Container{ID: "abd456", Name: "web", Created: time.Now()}
	if err := s.Create(b, true, 100000, 1<<31); err != nil || b.UsernsBase != 100000 {
		t.Fatalf("name or id range not freed: %v base %d", err, b.UsernsBase)
	}
	if _, _, err := s.UpdateOrDelete(a.ID, func(c *Container) (bool, error) { return true, nil }); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("gone container: %v", err)
	}
}
