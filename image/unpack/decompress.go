package unpack

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression is the encoding of a layer stream.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	return [...]string{"uncompressed", "gzip", "zstd"}[c]
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Detect reads the stream's magic bytes: media types lie (docker-archive
// layers named .tar are sometimes gzip), the bytes do not.
func Detect(br *bufio.Reader) Compression {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		return Gzip
	case bytes.HasPrefix(magic, zstdMagic):
		return Zstd
	}
	return Uncompressed
}

// Decompress returns the uncompressed stream of r, whatever its encoding.
// Gzip is decoded ahead in its own goroutine (pgzip), so inflating overlaps
// writing files.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	c := Detect(br)
	switch c {
	case Gzip:
		zr, err := pgzip.NewReaderN(br, 1<<20, 8)
		if err != nil {
			return nil, c, fmt.Errorf("gzip layer: %w", err)
		}
		// One stream only: a layer is a single gzip member sequence;
		// multistream stays on so concatenated members decode like gzip(1).
		return zr, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(2), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, c, fmt.Errorf("zstd layer: %w", err)
		}
		return zr.IOReadCloser(), c, nil
	}
	return io.NopCloser(br), c, nil
}
