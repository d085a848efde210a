// Command testsum reads `go test -json` output on stdin, echoes the output of
// failed tests and packages, a line per package, and ends with the counts in
// the plain form CI reads ("tests: N passed, N failed, N skipped"). It exits 1
// when anything failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	os.Exit(run())
}

func run() int {
	outputs := map[string]*strings.Builder{} // key: package + " " + test
	var passed, failed, skipped int
	var failures []string
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			fmt.Println(string(line)) // build errors come as plain text
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			b := outputs[key]
			if b == nil {
				b = &strings.Builder{}
				outputs[key] = b
			}
			b.WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				fmt.Printf("%-4s %s (%s)\n", e.Action, e.Package, time.Duration(e.Elapsed*float64(time.Second)).Round(time.Millisecond))
				if e.Action == "fail" {
					failures = append(failures, key)
				}
				continue
			}
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				failures = append(failures, key)
			case "skip":
				skipped++
			}
		}
	}
	sort.Strings(failures)
	for _, k := range failures {
		if b := outputs[k]; b != nil {
			fmt.Printf("\n--- output of %s\n%s", k, b.String())
		}
	}
	fmt.Printf("tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || len(failures) > 0 {
		return 1
	}
	return 0
}
