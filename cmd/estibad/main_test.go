package main

import (
	"testing"

	"github.com/estiba/estiba/cli"
)

// The daemon serves, without -H, the socket the CLI dials without -H.
func TestDefaultHostMatchesCLI(t *testing.T) {
	if defaultHost != cli.DefaultHost {
		t.Fatalf("estibad serves %s, the CLI dials %s", defaultHost, cli.DefaultHost)
	}
}
