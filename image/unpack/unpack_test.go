package unpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

var mtime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

func mkTar(t testing.TB, hdrs ...*tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.ModTime.IsZero() {
			h.ModTime = mtime
		}
		if h.Typeflag == tar.TypeReg && h.Size == 0 && h.Linkname != "" {
			// Linkname on a regular file carries its content in these tests.
			h.Size = int64(len(h.Linkname))
		}
		content := ""
		if h.Typeflag == tar.TypeReg {
			content, h.Linkname = h.Linkname, ""
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	return buf.Bytes()
}

func dir(name string, mode int64) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode}
}
func file(name, content string, mode int64) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Linkname: content}
}
func symlink(name, target string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}
}
func hardlink(name, target string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}
}

func apply(t *testing.T, data []byte, opts Options) (string, Result, error) {
	t.Helper()
	d := filepath.Join(t.TempDir(), "layer")
	os.Mkdir(d, 0o755)
	res, err := Apply(context.Background(), bytes.NewReader(data), d, opts)
	return d, res, err
}

func TestApplyOverlayForm(t *testing.T) {
	testutil.RequiresRoot(t)
	capHdr := file("bin/ping", "ELF", 0o755)
	capHdr.PAXRecords = map[string]string{
		"SCHILY.xattr.security.capability":      "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"SCHILY.xattr.trusted.overlay.redirect": "/etc",
	}
	owned := file("home/u/f", "data", 0o640)
	owned.Uid, owned.Gid = 1000, 1001
	data := mkTar(t,
		dir("./", 0o755),
		dir("bin/", 0o755),
		capHdr,
		file("bin/su", "su", 0o4755),
		dir("tmp/", 0o1777),
		owned,
		symlink("bin/sh", "/bin/busybox"),
		hardlink("bin/su2", "bin/su"),
		&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		&tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600},
		file("etc/.wh.gone", "", 0),
		file("var/.wh..wh..opq", "", 0),
	)
	for _, tc := range []struct {
		name    string
		enc     func([]byte) []byte
		comp    Compression
		workers int
	}{
		{"plain", func(b []byte) []byte { return b }, Uncompressed, 0},
		{"plain serial", func(b []byte) []byte { return b }, Uncompressed, 1},
		{"gzip", gz, Gzip, 0},
		{"zstd", zst, Zstd, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, res, err := apply(t, tc.enc(data), Options{Sync: true, Workers: tc.workers})
			if err != nil {
				t.Fatal(err)
			}
			if res.DiffID != digest.FromBytes(data) || res.Compression != tc.comp {
				t.Fatalf("diffID %s compression %v", res.DiffID, res.Compression)
			}
			checkMode(t, d, "bin/su", os.ModeSetuid|0o755)
			checkMode(t, d, "tmp", os.ModeSticky|os.ModeDir|0o777)
			checkMode(t, d, "run/fifo", os.ModeNamedPipe|0o600)
			var st unix.Stat_t
			unix.Lstat(filepath.Join(d, "home/u/f"), &st)
			if st.Uid != 1000 || st.Gid != 1001 {
				t.Errorf("owner %d:%d", st.Uid, st.Gid)
			}
			unix.Lstat(filepath.Join(d, "etc/gone"), &st)
			if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
				t.Errorf("whiteout mode %o rdev %d", st.Mode, st.Rdev)
			}
			unix.Lstat(filepath.Join(d, "dev/null"), &st)
			if st.Rdev != unix.Mkdev(1, 3) {
				t.Errorf("dev/null rdev %d", st.Rdev)
			}
			a, _ := os.Stat(filepath.Join(d, "bin/su"))
			b, _ := os.Stat(filepath.Join(d, "bin/su2"))
			if !os.SameFile(a, b) {
				t.Error("hard link not kept")
			}
			if l, _ := os.Readlink(filepath.Join(d, "bin/sh")); l != "/bin/busybox" {
				t.Errorf("symlink -> %q", l)
			}
			buf := make([]byte, 64)
			if n, _ := unix.Getxattr(filepath.Join(d, "var"), "trusted.overlay.opaque", buf); string(buf[:n]) != "y" {
				t.Error("opaque xattr missing")
			}
			if n, _ := unix.Getxattr(filepath.Join(d, "bin/ping"), "security.capability", buf); n <= 0 {
				t.Error("file capability missing")
			}
			if _, err := unix.Getxattr(filepath.Join(d, "bin/ping"), "trusted.overlay.redirect", buf); err == nil {
				t.Error("trusted.overlay xattr from the layer was applied")
			}
			if res.SkippedXattrs != 1 {
				t.Errorf("skipped xattrs = %d", res.SkippedXattrs)
			}
			fi, _ := os.Stat(filepath.Join(d, "bin"))
			if !fi.ModTime().Equal(mtime) {
				t.Errorf("dir mtime %v", fi.ModTime())
			}
			fi, _ = os.Lstat(filepath.Join(d, "bin/sh"))
			if !fi.ModTime().Equal(mtime) {
				t.Errorf("symlink mtime %v", fi.ModTime())
			}
		})
	}
}

func checkMode(t *testing.T, d, name string, want os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(d, name))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s mode %v, want %v", name, fi.Mode(), want)
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zst(b []byte) []byte {
	e, _ := zstd.NewWriter(nil)
	return e.EncodeAll(b, nil)
}

// escapes are layers that try to write outside their directory; each must
// be refused. They also seed FuzzUnpack.
func escapes(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"dotdot":              mkTar(t, file("../escape", "x", 0o644)),
		"inner dotdot":        mkTar(t, dir("a/", 0o755), file("a/../../escape", "x", 0o644)),
		"absolute":            mkTar(t, file("/tmp/escape", "x", 0o644)),
		"through symlink":     mkTar(t, symlink("l", "/tmp"), file("l/escape", "x", 0o644)),
		"through rel symlink": mkTar(t, symlink("l", "../.."), file("l/escape", "x", 0o644)),
		"symlink dir entry":   mkTar(t, symlink("l", "/tmp"), dir("l/sub/", 0o755)),
		"hardlink dotdot":     mkTar(t, hardlink("h", "../escape")),
		"hardlink absolute":   mkTar(t, hardlink("h", "/etc/passwd")),
		"hardlink via link":   mkTar(t, symlink("l", "/etc"), hardlink("h", "l/passwd")),
		"whiteout via link":   mkTar(t, symlink("l", "/tmp"), file("l/.wh.x", "", 0)),
		"opaque via link":     mkTar(t, symlink("l", "/tmp"), file("l/.wh..wh..opq", "", 0)),
		"whiteout dotdot":     mkTar(t, file(".wh...", "", 0)),
	}
}

func TestApplyRefusesEscapes(t *testing.T) {
	testutil.RequiresRoot(t)
	for name, data := range escapes(t) {
		t.Run(name, func(t *testing.T) {
			d, _, err := apply(t, data, Options{})
			if err == nil {
				t.Fatal("escape accepted")
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(d), "escape")); err == nil {
				t.Fatal("wrote outside the layer")
			}
		})
	}
}

func TestApplyLowerSymlink(t *testing.T) {
	testutil.RequiresRoot(t)
	lower, _, err := apply(t, mkTar(t, symlink("etc", "/host-etc"), dir("usr/", 0o755)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := apply(t, mkTar(t, file("etc/passwd", "x", 0o644)), Options{Lowers: []string{lower}}); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("entry under lower symlink: %v", err)
	}
	_, res, err := apply(t, mkTar(t, file("usr/bin/x", "x", 0o644), dir("etc/", 0o755), file("etc/passwd", "x", 0o644)), Options{Lowers: []string{lower}})
	if err != nil {
		t.Fatalf("legit layer refused: %v", err)
	}
	if len(res.ImplicitDirs) != 2 { // usr, usr/bin
		t.Fatalf("implicit dirs %v", res.ImplicitDirs)
	}
	if err := CheckLowers([]string{"etc/x"}, []string{lower}); err != nil {
		t.Fatalf("under symlink ancestor: %v", err) // covered by the check of "etc"
	}
	if err := CheckLowers([]string{"etc"}, []string{lower}); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("CheckLowers: %v", err)
	}
}

func TestApplyLimits(t *testing.T) {
	testutil.RequiresRoot(t)
	big := mkTar(t, file("a", string(make([]byte, 1<<20)), 0o644), file("b", "", 0o644), file("c", "", 0o644))
	tests := []struct {
		name string
		opts Options
	}{
		{"bytes", Options{MaxBytes: 1 << 19}},
		{"entries", Options{MaxEntries: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := apply(t, gz(big), tc.opts); !errors.Is(err, ErrLimit) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestApplyReplaces(t *testing.T) {
	testutil.RequiresRoot(t)
	d, _, err := apply(t, mkTar(t, dir("a/", 0o755), file("a/f", "1", 0o644), file("a", "now a file", 0o600), file("a", "again", 0o644)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(d, "a")); string(b) != "again" {
		t.Fatalf("content %q", b)
	}
}

func TestApplyFileUsedAsDir(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, workers := range []int{1, 4} {
		_, _, err := apply(t, mkTar(t, file("a", "x", 0o644), file("a/b", "y", 0o644)), Options{Workers: workers})
		if !errors.Is(err, ErrUnsafe) {
			t.Fatalf("workers %d: %v", workers, err)
		}
	}
}

func TestApplyMalformed(t *testing.T) {
	testutil.RequiresRoot(t)
	good := mkTar(t, file("f", "hello", 0o644))
	for name, data := range map[string][]byte{
		"truncated":    good[:300],
		"bad gzip":     append([]byte{0x1f, 0x8b}, good...),
		"cut gzip":     gz(good)[:30],
		"not a tar":    bytes.Repeat([]byte("garbage!"), 100),
		"root is file": mkTar(t, file(".", "x", 0o644)),
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := apply(t, data, Options{}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
