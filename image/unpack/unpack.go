// Package unpack applies OCI/Docker layer tar streams to a directory in
// overlayfs form: each layer gets its own directory, deletions become
// whiteouts (0/0 character devices) and opaque directories carry the
// trusted.overlay.opaque=y xattr, so the directories stack as lowerdirs.
//
// Safety: every file operation goes through a directory fd obtained with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS|
// RESOLVE_NO_XDEV) relative to the layer root and then an *at syscall on a
// single name with no-follow semantics, so no entry, link or symlink in the
// layer can make us write outside the target directory.
package unpack

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strings"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Options bound and tune Apply.
type Options struct {
	// MaxBytes bounds the uncompressed stream (decompression bombs).
	// Zero means DefaultMaxBytes.
	MaxBytes int64
	// MaxEntries bounds the number of tar entries. Zero: DefaultMaxEntries.
	MaxEntries int
	// Lowers are the directories of the layers below, topmost first. A
	// parent directory the layer does not create itself must be a real
	// directory in them, never a symlink: overlayfs would not follow it
	// the way a Docker applier does, and following it could leave the
	// rootfs.
	Lowers []string
	// Workers is the number of goroutines creating small files in
	// parallel; 0 means DefaultWorkers, 1 means none.
	Workers int
	// Sync calls syncfs(2) once at the end. Callers applying several
	// layers can leave it off and sync once for all.
	Sync bool
}

const (
	DefaultMaxBytes   = 64 << 30
	DefaultMaxEntries = 4 << 20
	DefaultWorkers    = 4
	// maxPooledFile bounds the files read into memory for the pool.
	maxPooledFile = 1 << 20
)

// Result describes an applied layer.
type Result struct {
	// DiffID is the digest of the uncompressed tar stream.
	DiffID digest.Digest
	// Size is the uncompressed stream length.
	Size        int64
	Compression Compression
	Entries     int
	// ImplicitDirs are parent directories the layer used without
	// creating them itself; CheckLowers validates them against lower
	// layers when those were not known at Apply time.
	ImplicitDirs []string
	// SkippedXattrs counts xattrs dropped by the xattr policy (see
	// xattrAllowed) or refused by the filesystem with ENOTSUP.
	SkippedXattrs int
}

// ErrLimit is wrapped by errors about a layer exceeding a bound.
var ErrLimit = errors.New("layer exceeds limit")

// ErrUnsafe is wrapped by errors about entries that would leave the target.
var ErrUnsafe = errors.New("unsafe layer entry")

// Apply unpacks the (possibly compressed) layer stream r into dir, which
// must exist and be empty. It returns the uncompressed digest computed while streaming.
func Apply(ctx context.Context, r io.Reader, dir string, opts Options) (Result, error) {
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.Workers == 0 {
		opts.Workers = DefaultWorkers
	}
	dr, comp, err := Decompress(r)
	if err != nil {
		return Result{}, err
	}
	defer dr.Close()
	rootfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Result{}, fmt.Errorf("open layer dir %s: %w", dir, err)
	}
	// Empty, so that every existing name is one this layer made: the
	// parallel writers rely on it.
	if n, err := unix.Getdents(rootfd, make([]byte, 4096)); err != nil || n > 48 {
		unix.Close(rootfd)
		return Result{}, fmt.Errorf("layer dir %s: must be empty", dir)
	}
	unix.Seek(rootfd, 0, 0)
	a := &applier{
		ctx: ctx, root: rootfd, opts: opts, dirCache: map[string]int{},
		euid: os.Geteuid(), egid: os.Getegid(), umask: readUmask(),
		buf: make([]byte, 1<<20), explicit: map[string]bool{}, seen: map[string]bool{},
	}
	if opts.Workers > 1 {
		a.pool = newPool(a, opts.Workers)
	}
	defer a.close()
	h := sha256.New()
	cr := &limitReader{r: dr, h: h, max: opts.MaxBytes}
	res, err := a.run(tar.NewReader(cr))
	if err == nil {
		err = a.barrier()
	}
	if err != nil {
		return res, fmt.Errorf("apply layer to %s: %w", dir, err)
	}
	// The tar reader stops at the end-of-archive blocks; the diffID covers
	// the whole stream, padding included.
	if _, err := io.CopyBuffer(io.Discard, cr, a.buf); err != nil {
		return res, fmt.Errorf("apply layer to %s: %w", dir, err)
	}
	if err := a.finishDirs(); err != nil {
		return res, fmt.Errorf("apply layer to %s: %w", dir, err)
	}
	if opts.Sync {
		if err := unix.Syncfs(rootfd); err != nil {
			return res, fmt.Errorf("syncfs %s: %w", dir, err)
		}
	}
	res.SkippedXattrs = int(a.skipped.Load())
	res.DiffID = digest.NewDigest(digest.SHA256, h)
	res.Size = cr.n
	res.Compression = comp
	return res, nil
}

// limitReader hashes and counts the uncompressed stream and stops it at max.
type limitReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	max int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.h.Write(p[:n])
	l.n += int64(n)
	if l.n > l.max {
		return n, fmt.Errorf("uncompressed size over %d bytes: %w", l.max, ErrLimit)
	}
	return n, err
}

func readUmask() int {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return 0o022
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			var m int
			fmt.Sscanf(strings.TrimSpace(v), "%o", &m)
			return m
		}
	}
	return 0o022
}

type dirMeta struct {
	path string
	ts   [2]unix.Timespec
}

type applier struct {
	ctx      context.Context
	root     int
	opts     Options
	dirCache map[string]int
	explicit map[string]bool // directories the layer itself created
	seen     map[string]bool // every name the layer created so far
	pool     *pool
	skipped  atomic.Int64
	dirs     []dirMeta
	euid     int
	egid     int
	umask    int
	buf      []byte
	res      Result
}

func (a *applier) close() {
	if a.pool != nil {
		a.pool.stop()
	}
	a.dropCache()
	unix.Close(a.root)
}

func (a *applier) dropCache() {
	for _, fd := range a.dirCache {
		unix.Close(fd)
	}
	clear(a.dirCache)
}

func (a *applier) run(tr *tar.Reader) (Result, error) {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return a.res, nil
		}
		if err != nil {
			return a.res, fmt.Errorf("read tar: %w", err)
		}
		a.res.Entries++
		if a.res.Entries > a.opts.MaxEntries {
			return a.res, fmt.Errorf("more than %d entries: %w", a.opts.MaxEntries, ErrLimit)
		}
		if a.res.Entries%256 == 0 {
			if err := a.ctx.Err(); err != nil {
				return a.res, err
			}
		}
		if err := a.entry(hdr, tr); err != nil {
			return a.res, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
}

// cleanName validates a tar name and returns it relative to the root
// ("." for the root itself). It refuses rather than rewrites: a layer with
// absolute or ".." names is malformed or hostile.
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute path: %w", ErrUnsafe)
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("NUL in path: %w", ErrUnsafe)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("path with '..': %w", ErrUnsafe)
		}
	}
	p := path.Clean(name)
	if p == "" {
		p = "."
	}
	return p, nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		if hdr.Typeflag == tar.TypeDir {
			return a.rootDir(hdr)
		}
		return fmt.Errorf("non-directory at the layer root: %w", ErrUnsafe)
	}
	dir, base := path.Split(name)
	dir = path.Clean(dir)
	if err := a.pool.failed(); err != nil {
		return err
	}
	// Entries that may touch an earlier one wait for the pool to finish.
	if a.seen[name] || strings.HasPrefix(base, ".wh.") || hdr.Typeflag == tar.TypeLink {
		if err := a.barrier(); err != nil {
			return err
		}
	}
	if strings.HasPrefix(base, ".wh.") {
		return a.whiteout(dir, base)
	}
	pfd, err := a.parent(dir)
	if err != nil {
		return err
	}
	defer func() { a.seen[name] = true }()
	switch hdr.Typeflag {
	case tar.TypeDir:
		return a.mkdir(pfd, name, base, hdr)
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont:
		return a.file(pfd, name, base, hdr, r)
	case tar.TypeSymlink:
		return a.symlink(pfd, base, hdr)
	case tar.TypeLink:
		return a.hardlink(pfd, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return a.mknod(pfd, base, hdr)
	case tar.TypeXGlobalHeader:
		return nil
	}
	return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
}
