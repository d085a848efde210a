package cli

import (
	"fmt"
	"testing"

	"github.com/estiba/estiba/engine/api/types"
)

func TestImageRows(t *testing.T) {
	const d1, d2 = "sha256:1111", "sha256:2222"
	tests := []struct {
		name        string
		tags, dgsts []string
		digests     bool
		want        string
	}{
		{"none", nil, nil, false, "[{<none> <none> <none>}]"},
		{"tag", []string{"alpine:3"}, nil, true, "[{alpine 3 <none>}]"},
		{"tag and digest", []string{"alpine:3"}, []string{"alpine@" + d1}, true, "[{alpine 3 " + d1 + "}]"},
		{"tag and digest, no --digests", []string{"alpine:3"}, []string{"alpine@" + d1}, false, "[{alpine 3 <none>}]"},
		{"two tags two digests", []string{"r:1", "r:2"}, []string{"r@" + d1, "r@" + d2}, true,
			"[{r 1 " + d1 + "} {r 1 " + d2 + "} {r 2 " + d1 + "} {r 2 " + d2 + "}]"},
		{"digest only", nil, []string{"localhost:5000/x@" + d1}, true, "[{localhost:5000/x <none> " + d1 + "}]"},
		{"digest only, no --digests", nil, []string{"localhost:5000/x@" + d1}, false, "[{localhost:5000/x <none> }]"},
		{"other repo's digest", []string{"a:1"}, []string{"b@" + d1}, true, "[{a 1 <none>} {b <none> " + d1 + "}]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := fmt.Sprint(imageRows(types.ImageSummary{RepoTags: tc.tags, RepoDigests: tc.dgsts}, tc.digests))
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
