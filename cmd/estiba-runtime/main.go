// Command estiba-runtime is estiba's OCI runtime with runc's command line.
package main

import (
	"fmt"
	"os"
)

var version = "dev"

func main() {
	fmt.Fprintf(os.Stderr, "estiba-runtime %s: no commands are built yet\n", version)
	os.Exit(1)
}
