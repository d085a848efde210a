package cli

import (
	"strings"
	"testing"
	"time"
)

func TestRenderProgress(t *testing.T) {
	stream := `{"status":"Pulling from x","id":"latest"}
{"status":"Downloading","id":"aaa","progress":"[>  ] 1B/4B","progressDetail":{"current":1000,"total":4000}}
{"status":"Downloading","id":"bbb","progress":"[>  ] 1B/4B","progressDetail":{"current":0,"total":4000}}
{"status":"Downloading","id":"aaa","progress":"[=> ] 2B/4B","progressDetail":{"current":3000,"total":4000}}
{"status":"Pull complete","id":"aaa"}
{"status":"Digest: sha256:1"}
`
	tick := time.Unix(0, 0)
	now := func() time.Time { tick = tick.Add(time.Second); return tick }
	for _, tc := range []struct {
		name string
		tty  bool
		want []string
		not  []string
	}{
		{"plain", false, []string{"aaa: Downloading\nbbb: Downloading\naaa: Pull complete\nDigest: sha256:1\n"}, []string{"\x1b", "[=>"}},
		// The second aaa line is redrawn two lines up, with its speed
		// (2000 bytes in two ticks: bbb read the clock too).
		{"tty", true, []string{"aaa: Downloading [>  ] 1B/4B\n", "\x1b[2A\r\x1b[2Kaaa: Downloading [=> ] 2B/4B  1kB/s\r\x1b[2B", "Digest: sha256:1\n"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			if err := renderProgressTo(&out, strings.NewReader(stream), tc.tty, now); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output %q lacks %q", out.String(), w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("output %q has %q", out.String(), n)
				}
			}
		})
	}
	err := renderProgressTo(&strings.Builder{}, strings.NewReader(`{"errorDetail":{"message":"boom"},"error":"boom"}`), false, time.Now)
	if err == nil || err.Error() != "boom" {
		t.Errorf("error stream: %v", err)
	}
}

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"": "docker.io", "https://index.docker.io/v1/": "docker.io", "127.0.0.1:5000": "127.0.0.1:5000",
		"http://localhost:5000/v2/": "localhost:5000", "reg.example": "reg.example",
	} {
		if got := registryHost(in); got != want {
			t.Errorf("registryHost(%q) = %q, want %q", in, got, want)
		}
	}
}
