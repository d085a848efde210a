module github.com/estiba/estiba

go 1.26.8

require (
	github.com/creack/pty v1.1.24
	github.com/opencontainers/runtime-spec v1.3.0
	go.etcd.io/bbolt v1.4.3
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
)
