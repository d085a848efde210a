// Command imageload is the estiba side of bench/image-load.sh: it generates
// the benchmark image (-gen) and loads a docker-archive into a fresh image
// store (-load), printing the elapsed seconds.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"runtime/pprof"
	"time"

	"github.com/estiba/estiba/image/service"
	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func main() {
	gen := flag.String("gen", "", "write the benchmark docker-archive to this file")
	load := flag.String("load", "", "docker-archive to load")
	root := flag.String("root", "", "image store root for -load")
	prof := flag.String("cpuprofile", "", "write a CPU profile of -load here")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	var err error
	switch {
	case *gen != "":
		err = generate(*gen)
	case *load != "" && *root != "":
		err = loadArchive(*load, *root)
	default:
		err = fmt.Errorf("use -gen FILE or -load FILE -root DIR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imageload:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func loadArchive(file, root string) error {
	start := time.Now()
	s, err := service.Open(root, service.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := s.Load(context.Background(), f); err != nil {
		return err
	}
	fmt.Printf("%.3f\n", time.Since(start).Seconds())
	return nil
}

// generate writes 5 gzip layers of ~1400 files each, ~300 MB unpacked,
// about half random and half low-entropy text, like real binaries+data.
func generate(out string) error {
	r := rand.New(rand.NewSource(42))
	var layers [][]byte
	var diffIDs []digest.Digest
	for l := range 5 {
		raw, gz := layer(r, l)
		layers = append(layers, gz)
		diffIDs = append(diffIDs, digest.FromBytes(raw))
	}
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/sh"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	cb, _ := json.Marshal(cfg)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	put := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
		tw.Write(b)
	}
	var paths []string
	for _, l := range layers {
		p := fmt.Sprintf("blobs/sha256/%x", sha256.Sum256(l))
		put(p, l)
		paths = append(paths, p)
	}
	cfgPath := fmt.Sprintf("blobs/sha256/%x", sha256.Sum256(cb))
	put(cfgPath, cb)
	mj, _ := json.Marshal([]map[string]any{{"Config": cfgPath, "RepoTags": []string{"localhost/estiba-bench:load"}, "Layers": paths}})
	put("manifest.json", mj)
	return tw.Close()
}

var words = []string{"lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod", "tempor"}

func layer(r *rand.Rand, l int) (raw, gz []byte) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1700000000, 0)
	for d := range 40 {
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l%d/d%d/", l, d), Mode: 0o755, Typeflag: tar.TypeDir, ModTime: mt})
		for i := range 35 {
			size := 1024 + r.Intn(80*1024)
			body := make([]byte, 0, size)
			for len(body) < size {
				if r.Intn(100) < 30 {
					chunk := make([]byte, 512)
					r.Read(chunk)
					body = append(body, chunk...)
					continue
				}
				for end := len(body) + 512; len(body) < end; {
					body = append(body, words[r.Intn(len(words))]...)
					body = append(body, ' ')
				}
			}
			body = body[:size]
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l%d/d%d/f%d", l, d, i), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg, ModTime: mt})
			tw.Write(body)
		}
	}
	tw.Close()
	raw = buf.Bytes()
	var out bytes.Buffer
	zw := pgzip.NewWriter(&out)
	io.Copy(zw, bytes.NewReader(raw))
	zw.Close()
	return raw, out.Bytes()
}
