// Command estiba is the engine daemon (`estiba daemon`) and its CLI client.
package main

import (
	"fmt"
	"os"
)

var version = "dev"

func main() {
	fmt.Fprintf(os.Stderr, "estiba %s: no commands are built yet\n", version)
	os.Exit(1)
}
