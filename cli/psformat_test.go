package cli

import (
	"strings"
	"testing"

	"github.com/estiba/estiba/engine/api/types"
)

func TestFormatPs(t *testing.T) {
	list := []types.ContainerSummary{{ID: "0123456789abcdef0123", Names: []string{"/web"}, Image: "bb", Command: "sleep 60",
		State: "running", Status: "Up 1 second", Labels: map[string]string{"b": "2", "a": "1"},
		Ports: []types.Port{{IP: "0.0.0.0", PublicPort: 8080, PrivatePort: 80, Type: "tcp"}}}}
	for _, tc := range []struct{ format, want string }{
		{"{{.Names}} {{.State}}", "web running\n"},
		{"{{.ID}} {{.Label \"a\"}} {{.Labels}}", "0123456789ab 1 a=1,b=2\n"},
		{"{{.Ports}}", "0.0.0.0:8080->80/tcp\n"},
		{"table {{.ID}}\\t{{.Names}}", "CONTAINER ID   NAMES\n0123456789ab   web\n"},
		{"json", `"Names":"web"`},
		{"{{.Command}}", "\"sleep 60\"\n"},
	} {
		var b strings.Builder
		if err := formatPs(&b, tc.format, list, false); err != nil || !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s: %q, %v; want %q", tc.format, b.String(), err, tc.want)
		}
	}
	if err := formatPs(&strings.Builder{}, "{{.Nope}}", list, false); err == nil {
		t.Error("unknown field accepted")
	}
}
