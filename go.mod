module github.com/estiba/estiba

go 1.26.8

require (
	github.com/creack/pty v1.1.24
	github.com/opencontainers/runtime-spec v1.3.0
	go.etcd.io/bbolt v1.4.3
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/moby/profiles/seccomp v0.3.0 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
	github.com/spf13/pflag v1.0.6 // indirect
	golang.org/x/term v0.48.0 // indirect
)
