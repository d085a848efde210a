package engine

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/estiba/estiba/engine/errdefs"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

type (
	specT       = specs.Spec
	imageConfig = imagespec.ImageConfig
)

// parseSignal reads "TERM", "SIGTERM" or "15".
func parseSignal(s string) (unix.Signal, error) {
	if s == "" {
		return unix.SIGTERM, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q: %w", s, errdefs.ErrInvalid)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal %q: %w", s, errdefs.ErrInvalid)
}

// ParseSize reads Docker's sizes: "10m", "1g", "512k", "100" (as the
// json-file log driver's max-size, in binary units).
func ParseSize(s string) (int64, error) { return parseSize(s) }

func parseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for suf, m := range map[string]int64{"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "b": 1} {
		if strings.HasSuffix(s, suf) {
			if _, err := strconv.ParseFloat(strings.TrimSuffix(s, suf), 64); err == nil {
				s, mult = strings.TrimSuffix(s, suf), m
				break
			}
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("invalid size %q: %w", s, errdefs.ErrInvalid)
	}
	return int64(f * float64(mult)), nil
}

var adjectives = []string{"brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty", "proud", "quiet", "sharp", "tender", "vivid", "wise", "zealous"}
var nouns = []string{"anchor", "barge", "cargo", "dock", "ferry", "galley", "harbor", "keel", "lighter", "mast", "pier", "quay", "rudder", "stern", "tug", "wharf"}

// randomName is Docker-style adjective_noun, made unique by id bytes: try
// n (from 0) takes the next four hex digits of the id, so that a name in
// use gets another on a retry (18*16*65536 names: among a few thousand
// containers, two often draw the same).
func randomName(id string, try int) string {
	a, _ := strconv.ParseUint(id[:4], 16, 32)
	n, _ := strconv.ParseUint(id[4:8], 16, 32)
	off := 8 + 4*(try%((len(id)-8)/4))
	return adjectives[a%uint64(len(adjectives))] + "_" + nouns[n%uint64(len(nouns))] + "_" + id[off:off+4]
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
