package cli

import (
	"io"
	"testing"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/spf13/pflag"
)

func TestCreateFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		ok   bool
		test func(t *testing.T, r *reqView)
	}{
		{"basic", []string{"-d", "--name", "x", "-e", "A=1", "-e", "FROM_ENV", "img", "sh", "-c", "true"}, true, func(t *testing.T, r *reqView) {
			if r.Image != "img" || len(r.Cmd) != 3 || r.Env[0] != "A=1" || r.Env[1] != "FROM_ENV=v" || r.AttachStdout {
				t.Errorf("%+v", r)
			}
		}},
		{"resources", []string{"-m", "64m", "--memory-swap", "-1", "--cpus", "1.5", "--pids-limit", "10", "--ulimit", "nofile=10:20", "img"}, true, func(t *testing.T, r *reqView) {
			if r.HC.Memory != 64<<20 || r.HC.MemorySwap != -1 || r.HC.NanoCPUs != 1_500_000_000 || *r.HC.PidsLimit != 10 || r.HC.Ulimits[0].Hard != 20 {
				t.Errorf("%+v", r.HC.Resources)
			}
		}},
		{"IPv6 host address", []string{"-p", "[::1]:8080:80", "-p", "9090:90", "img"}, true, func(t *testing.T, r *reqView) {
			b, b2 := r.HC.PortBindings["80/tcp"], r.HC.PortBindings["90/tcp"]
			if len(b) != 1 || b[0].HostIP != "::1" || b[0].HostPort != "8080" || len(b2) != 1 || b2[0].HostIP != "" || b2[0].HostPort != "9090" {
				t.Errorf("bindings %v %v", b, b2)
			}
		}},
		{"unbracketed IPv6", []string{"-p", "::1:8080:80", "img"}, false, nil},
		{"ports and restart", []string{"-p", "127.0.0.1:8080:80/udp", "--restart", "on-failure:3", "img"}, true, func(t *testing.T, r *reqView) {
			b := r.HC.PortBindings["80/udp"]
			if len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != "8080" || r.HC.RestartPolicy.MaximumRetryCount != 3 {
				t.Errorf("%+v %+v", r.HC.PortBindings, r.HC.RestartPolicy)
			}
		}},
		{"tty interactive", []string{"-it", "--rm", "--init", "--entrypoint", "", "img"}, true, func(t *testing.T, r *reqView) {
			if !r.Tty || !r.OpenStdin || !r.StdinOnce || !r.HC.AutoRemove || r.HC.Init == nil || len(r.Entrypoint) != 1 {
				t.Errorf("%+v", r)
			}
		}},
		{"bad ulimit", []string{"--ulimit", "nofile", "img"}, false, nil},
		{"bad memory", []string{"-m", "lots", "img"}, false, nil},
		{"no image", []string{"-d"}, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var f createFlags
			fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			req, err := f.request(fs, fs.Args(), func(k string) string {
				if k == "FROM_ENV" {
					return "v"
				}
				return ""
			})
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, ok %v", err, tc.ok)
			}
			if err == nil {
				tc.test(t, &reqView{Config: &req.Config, HC: req.HostConfig})
			}
		})
	}
}

type reqView struct {
	*types.Config
	HC *types.HostConfig
}
