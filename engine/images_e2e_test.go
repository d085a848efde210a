package engine_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/estiba/estiba/image/registry/registrytest"
)

// TestE2EImageCommands drives the image commands issue 3 lists through the
// real daemon against a real registry with Basic auth: login, tag, push,
// rmi, pull, run; save/rmi/load; history; image prune; then the same with
// the stock docker CLI.
func TestE2EImageCommands(t *testing.T) {
	e := startE2E(t)
	reg := registrytest.Start(t, registrytest.Options{Auth: registrytest.AuthBasic})
	tarball := busyboxTar(t, e.work)
	img := reg.Host + "/e2e/bb:v1"
	archive := filepath.Join(e.work, "bb.tar")
	e.steps([]step{
		{"estiba", []string{"import", tarball, "e2e/bb"}, "sha256:", 0},
		{"estiba", []string{"tag", "e2e/bb", img}, "", 0},
		// Anonymous push to an auth registry is refused, clearly.
		{"estiba", []string{"push", img}, "401 Unauthorized", 1},
		// A refused login is the daemon's 401, in Docker's words.
		{"estiba", []string{"login", "-u", reg.Username, "-p", "wrong", reg.Host}, "login attempt to http://" + reg.Host + "/v2/ failed with status: 401 Unauthorized", 1},
		{"estiba", []string{"login", "-u", reg.Username, "-p", reg.Password, reg.Host}, "Login Succeeded", 0},
		{"estiba", []string{"push", img}, ": Pushed", 0},
		{"estiba", []string{"push", img}, ": Layer already exists", 0},
		{"estiba", []string{"push", img}, "v1: digest: sha256:", 0},
	})
	// The push recorded the repository digest: it lists, inspects, runs and
	// untags the image.
	out, _, _ := e.estiba("image", "inspect", "-f", "{{index .RepoDigests 0}}", img)
	byDigest := strings.TrimSpace(out)
	repoDigest, ok := strings.CutPrefix(byDigest, reg.Host+"/e2e/bb@")
	if !ok {
		t.Fatalf("RepoDigests after push: %q", out)
	}
	e.steps([]step{
		{"estiba", []string{"images", "--digests"}, repoDigest, 0},
		{"estiba", []string{"run", "--rm", byDigest, "echo", "by-digest"}, "by-digest", 0},
		{"estiba", []string{"rmi", byDigest}, "Untagged: " + byDigest, 0},
		{"estiba", []string{"image", "inspect", byDigest}, "No such", 1},
		{"estiba", []string{"rmi", img, "e2e/bb"}, "Deleted", 0},
		// Registry errors as Docker words them: an unknown manifest.
		{"estiba", []string{"pull", reg.Host + "/e2e/nope:1"}, "manifest for " + reg.Host + "/e2e/nope:1 not found: manifest unknown", 1},
		{"estiba", []string{"pull", img}, "Digest: " + repoDigest, 0},
		{"estiba", []string{"images", "--digests"}, repoDigest, 0},
		{"estiba", []string{"rmi", byDigest}, "Untagged: " + byDigest, 0},
		{"estiba", []string{"pull", byDigest}, "Downloaded newer image for " + byDigest, 0},
		{"estiba", []string{"rmi", byDigest}, "Untagged: " + byDigest, 0},
		{"estiba", []string{"pull", img}, "Downloaded newer image for " + img, 0},
		{"estiba", []string{"run", "--rm", img, "echo", "pulled-ok"}, "pulled-ok", 0},
		{"estiba", []string{"history", img}, "CREATED BY", 0},
		{"estiba", []string{"history", "--no-trunc", "-q", img}, "sha256:", 0},
		{"estiba", []string{"history", "nope:1"}, "no such image", 1},
		// save → rmi → load → run.
		{"estiba", []string{"save", img}, "manifest.json", 0}, // to stdout
		{"estiba", []string{"save", "-o", archive, img}, "", 0},
		{"estiba", []string{"save", "-o", archive + ".x", "nope:1"}, "no such image", 1},
		{"estiba", []string{"rmi", img}, "Deleted", 0},
		{"estiba", []string{"load", "-i", archive}, "Loaded image: " + img, 0},
		{"estiba", []string{"run", "--rm", img, "echo", "loaded-ok"}, "loaded-ok", 0},
		// A nameless import is dangling: prune takes it, -a the rest.
		{"estiba", []string{"import", tarball}, "sha256:", 0},
		{"estiba", []string{"image", "prune", "-f"}, "Deleted Images:", 0},
		{"estiba", []string{"images", "-q"}, "", 0},
		{"estiba", []string{"image", "prune", "-a", "-f"}, "untagged: " + img, 0},
		{"estiba", []string{"logout", reg.Host}, "Removing login credentials", 0},
	})
	if _, err := os.Stat(archive + ".x"); err == nil {
		t.Error("a failed save left its output file")
	}
	if out, _, _ := e.estiba("images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images left after prune -a: %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(e.work, ".docker", "config.json")); strings.Contains(string(b), reg.Host) {
		t.Errorf("logout left the credential: %s", b)
	}
	testCredHelper(t, e, reg, tarball)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	dimg := reg.Host + "/e2e/docker:v2"
	e.steps([]step{
		{"estiba", []string{"load", "-i", archive}, "Loaded image", 0},
		{"docker", []string{"tag", img, dimg}, "", 0},
		{"docker", []string{"login", "-u", reg.Username, "-p", reg.Password, reg.Host}, "Login Succeeded", 0},
		{"docker", []string{"login", "-u", reg.Username, "-p", "wrong", reg.Host}, "login attempt to http://" + reg.Host + "/v2/ failed with status: 401 Unauthorized", 1},
		{"docker", []string{"pull", reg.Host + "/e2e/nope:1"}, "manifest for " + reg.Host + "/e2e/nope:1 not found: manifest unknown", 1},
		{"docker", []string{"push", dimg}, "v2: digest: sha256:", 0},
		{"docker", []string{"images", "--digests"}, "sha256:", 0},
		{"docker", []string{"rmi", dimg, img}, "Deleted", 0},
		{"docker", []string{"pull", dimg}, "Downloaded newer image", 0},
		{"docker", []string{"history", dimg}, "CREATED BY", 0},
		{"docker", []string{"save", "-o", archive, dimg}, "", 0},
		{"docker", []string{"rmi", dimg}, "Deleted", 0},
		{"docker", []string{"load", "-i", archive}, "Loaded image: " + dimg, 0},
		{"docker", []string{"image", "prune", "-a", "-f"}, "Total reclaimed space", 0},
		{"docker", []string{"logout", reg.Host}, "Removing login credentials", 0},
	})
}

// testCredHelper: with credsStore in config.json, estiba login stores
// through the helper (the file keeps no secret), push and pull take the
// credential from it, logout erases it.
func testCredHelper(t *testing.T, e *e2e, reg *registrytest.Registry, tarball string) {
	h := registrytest.NewCredHelper(t)
	cfg := filepath.Join(e.work, ".docker", "config.json")
	if err := os.WriteFile(cfg, []byte(`{"credsStore":"`+h.Name+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	img := reg.Host + "/e2e/helped:v1"
	e.steps([]step{
		{"estiba", []string{"import", tarball, img}, "sha256:", 0},
		{"estiba", []string{"push", img}, "401 Unauthorized", 1},
		{"estiba", []string{"login", "-u", reg.Username, "-p", reg.Password, reg.Host}, "Login Succeeded", 0},
		{"estiba", []string{"push", img}, "v1: digest: sha256:", 0},
		{"estiba", []string{"rmi", img}, "Deleted", 0},
		{"estiba", []string{"pull", img}, "Downloaded newer image for " + img, 0},
		{"estiba", []string{"rmi", img}, "Deleted", 0},
	})
	if got := h.Stored(t, reg.Host); !strings.Contains(got, `"Secret":"`+reg.Password+`"`) {
		t.Errorf("helper holds %q after login", got)
	}
	if b, _ := os.ReadFile(cfg); strings.Contains(string(b), reg.Password) || !strings.Contains(string(b), h.Name) {
		t.Errorf("config after login through the helper: %s", b)
	}
	e.steps([]step{
		{"estiba", []string{"logout", reg.Host}, "Removing login credentials", 0},
		{"estiba", []string{"pull", img}, "401 Unauthorized", 1},
	})
	if got := h.Stored(t, reg.Host); got != "" {
		t.Errorf("helper holds %q after logout", got)
	}
	if err := os.Remove(cfg); err != nil {
		t.Fatal(err)
	}
}
