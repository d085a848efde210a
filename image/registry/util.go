package registry

import (
	"encoding/json"
	"fmt"
	"io"
)

func jsonDecode(r io.Reader, v any) error {
	if err := json.NewDecoder(io.LimitReader(r, MaxManifestSize)).Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}
