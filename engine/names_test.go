package engine

import (
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/engine/store"
)

// takenNames rejects the names it holds as the store does.
type takenNames map[string]bool

func (t takenNames) Create(c *store.Container, _ bool, _, _ uint32) error {
	if t[c.Name] {
		return fmt.Errorf("the container name %q is already in use: %w", c.Name, store.ErrNameInUse)
	}
	t[c.Name] = true
	return nil
}

func TestCreateRecordNames(t *testing.T) {
	id := newID()
	valid := regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	tests := []struct {
		name      string
		taken     int // generated names taken: randomName(id, 0..taken-1)
		generated bool
		want      string // "" when Create must fail with a conflict
	}{
		{"free", 0, true, randomName(id, 0)},
		{"first taken", 1, true, randomName(id, 1)},
		{"three taken", 3, true, randomName(id, 3)},
		{"all tries taken", 8, true, ""},
		{"chosen name taken", 1, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := takenNames{}
			for i := range tt.taken {
				s[randomName(id, i)] = true
			}
			c := &store.Container{ID: id, Name: randomName(id, 0)}
			err := createRecord(s, c, tt.generated, false, 0, 0)
			if tt.want == "" {
				if !errors.Is(err, errdefs.ErrConflict) {
					t.Fatalf("err %v, want a conflict", err)
				}
				return
			}
			if err != nil || c.Name != tt.want || !valid.MatchString(c.Name) {
				t.Fatalf("name %q err %v, want %q", c.Name, err, tt.want)
			}
		})
	}
	seen := map[string]bool{}
	for i := range 8 {
		seen[randomName(id, i)] = true
	}
	if len(seen) < 7 { // two 4-digit slices of a random id may match
		t.Fatalf("8 tries gave %d names", len(seen))
	}
}
