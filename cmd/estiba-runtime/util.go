package main

import "fmt"

func errUsage(u string) error { return fmt.Errorf("usage: %s", u) }
