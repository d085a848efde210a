package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/estiba/estiba/image/content"
	"github.com/estiba/estiba/image/snapshot"
	"github.com/estiba/estiba/image/unpack"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func tarOf(t testing.TB, files map[string][]byte, order ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range order {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write(files[n])
	}
	tw.Close()
	return buf.Bytes()
}

// seedArchive is a valid one-layer docker-archive.
func seedArchive(t testing.TB) []byte {
	layer := tarOf(t, map[string][]byte{"hello": []byte("hi")}, "hello")
	cfg, _ := json.Marshal(ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(layer)}}})
	man, _ := json.Marshal([]dockerManifest{{Config: "c.json", RepoTags: []string{"a:b"}, Layers: []string{"l/layer.tar"}}})
	return tarOf(t, map[string][]byte{"l/layer.tar": layer, "c.json": cfg, "manifest.json": man}, "l/layer.tar", "c.json", "manifest.json")
}

func stores(t testing.TB, root string) (*content.LocalStore, *snapshot.Snapshotter) {
	cs, err := content.Open(filepath.Join(root, "content"), content.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := snapshot.Open(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	return cs, sn
}

func TestLoadSeed(t *testing.T) {
	cs, sn := stores(t, t.TempDir())
	defer sn.Close()
	imgs, err := Load(context.Background(), bytes.NewReader(seedArchive(t)), cs, sn, unpack.Options{})
	if err != nil || len(imgs) != 1 || imgs[0].Names[0] != "a:b" {
		t.Fatalf("%+v %v", imgs, err)
	}
}

// FuzzLoad checks that no archive panics Load or writes outside its stores.
func FuzzLoad(f *testing.F) {
	seed := seedArchive(f)
	f.Add(seed)
	f.Add(seed[:1500])
	f.Add(tarOf(f, map[string][]byte{"index.json": []byte(`{"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}]}`)}, "index.json"))
	f.Add(tarOf(f, map[string][]byte{"manifest.json": []byte(`[{"Config":"../../etc/passwd","Layers":["/etc/shadow"]}]`)}, "manifest.json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		cs, sn := stores(t, root)
		defer sn.Close()
		Load(context.Background(), bytes.NewReader(data), cs, sn, unpack.Options{MaxBytes: 1 << 20, MaxEntries: 100})
		if ents, _ := os.ReadDir(base); len(ents) != 1 {
			t.Fatalf("entries beside the store: %v", ents)
		}
	})
}

// TestLoadLegacySymlinkedLayers: old docker save links a repeated layer's
// layer.tar to the first copy; both images load from the one entry.
func TestLoadLegacySymlinkedLayers(t *testing.T) {
	layer := tarOf(t, map[string][]byte{"hello": []byte("hi")}, "hello")
	diff := digest.FromBytes(layer)
	cfg1, _ := json.Marshal(ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diff}}, Author: "one"})
	cfg2, _ := json.Marshal(ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diff}}, Author: "two"})
	man, _ := json.Marshal([]dockerManifest{
		{Config: "c1.json", RepoTags: []string{"a:1"}, Layers: []string{"l1/layer.tar"}},
		{Config: "c2.json", RepoTags: []string{"a:2"}, Layers: []string{"l2/layer.tar"}},
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "l1/layer.tar", Mode: 0o644, Size: int64(len(layer)), Typeflag: tar.TypeReg})
	tw.Write(layer)
	tw.WriteHeader(&tar.Header{Name: "l2/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../l1/layer.tar"})
	for name, b := range map[string][]byte{"c1.json": cfg1, "c2.json": cfg2, "manifest.json": man, "repositories": []byte(`{"a":{"1":"x"}}`)} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.Close()
	cs, sn := stores(t, t.TempDir())
	defer sn.Close()
	imgs, err := Load(context.Background(), &buf, cs, sn, unpack.Options{})
	if err != nil || len(imgs) != 2 || imgs[0].Config.Author != "one" || imgs[1].Config.Author != "two" {
		t.Fatalf("%+v %v", imgs, err)
	}
	if !sn.Exists(context.Background(), diff.String()) {
		t.Fatal("layer snapshot missing")
	}
}

func TestLoadRejects(t *testing.T) {
	layer := tarOf(t, map[string][]byte{"hello": []byte("hi")}, "hello")
	cfg, _ := json.Marshal(ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString("other")}}})
	man, _ := json.Marshal([]dockerManifest{{Config: "c.json", Layers: []string{"l/layer.tar"}}})
	missing, _ := json.Marshal([]dockerManifest{{Config: "c.json", Layers: []string{"nope/layer.tar"}}})
	tests := map[string][]byte{
		"diffID mismatch": tarOf(t, map[string][]byte{"l/layer.tar": layer, "c.json": cfg, "manifest.json": man}, "l/layer.tar", "c.json", "manifest.json"),
		"missing layer":   tarOf(t, map[string][]byte{"c.json": cfg, "manifest.json": missing}, "c.json", "manifest.json"),
		"no manifest":     tarOf(t, map[string][]byte{"l/layer.tar": layer}, "l/layer.tar"),
		"not a tar":       []byte("hello world"),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			cs, sn := stores(t, root)
			defer sn.Close()
			if _, err := Load(context.Background(), bytes.NewReader(data), cs, sn, unpack.Options{}); err == nil {
				t.Fatal("accepted")
			}
			if ents, _ := os.ReadDir(filepath.Join(root, "snapshots", "snapshots")); len(ents) != 0 {
				t.Fatalf("left %d snapshot dirs", len(ents))
			}
		})
	}
}

// TestLoadParallelLayers: layers unpack in the background; a bad layer
// among good ones fails the load with its own error (not a cancellation),
// and no staging directory or ingest is left behind.
func TestLoadParallelLayers(t *testing.T) {
	good := func(n string) []byte { return tarOf(t, map[string][]byte{n: []byte(n)}, n) }
	bad := tarOf(t, map[string][]byte{"../escape": []byte("x")}, "../escape")
	for _, tc := range []struct {
		name   string
		layers [][]byte
		err    error
	}{
		{"good", [][]byte{good("a"), good("b"), good("c"), good("d"), good("e")}, nil},
		{"bad in the middle", [][]byte{good("a"), good("b"), bad, good("d"), good("e")}, unpack.ErrUnsafe},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string][]byte{}
			var order, paths []string
			var diffIDs []digest.Digest
			for _, l := range tc.layers {
				p := "blobs/sha256/" + digest.FromBytes(l).Encoded()
				files[p] = l
				order, paths = append(order, p), append(paths, p)
				diffIDs = append(diffIDs, digest.FromBytes(l))
			}
			cfg, _ := json.Marshal(ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}})
			man, _ := json.Marshal([]dockerManifest{{Config: "c.json", RepoTags: []string{"p:1"}, Layers: paths}})
			files["c.json"], files["manifest.json"] = cfg, man
			root := t.TempDir()
			cs, sn := stores(t, root)
			defer sn.Close()
			imgs, err := Load(context.Background(), bytes.NewReader(tarOf(t, files, append(order, "c.json", "manifest.json")...)), cs, sn, unpack.Options{})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Load: %v, want %v", err, tc.err)
				}
			} else if err != nil || len(imgs) != 1 {
				t.Fatalf("Load: %+v, %v", imgs, err)
			}
			staging, _ := filepath.Glob(filepath.Join(root, "snapshots", "snapshots", "staging-*"))
			ingest, _ := os.ReadDir(filepath.Join(root, "content", "ingest"))
			if len(staging) != 0 || len(ingest) != 0 {
				t.Errorf("left behind: staging %v, ingest %d", staging, len(ingest))
			}
		})
	}
}
