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
		{"estiba", []string{"login", "-u", reg.Username, "-p", "wrong", reg.Host}, "login to " + reg.Host + " failed", 1},
		{"estiba", []string{"login", "-u", reg.Username, "-p", reg.Password, reg.Host}, "Login Succeeded", 0},
		{"estiba", []string{"push", img}, ": Pushed", 0},
		{"estiba", []string{"push", img}, ": Layer already exists", 0},
		{"estiba", []string{"push", img}, "v1: digest: sha256:", 0},
		{"estiba", []string{"rmi", img, "e2e/bb"}, "Deleted", 0},
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
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	dimg := reg.Host + "/e2e/docker:v2"
	e.steps([]step{
		{"estiba", []string{"load", "-i", archive}, "Loaded image", 0},
		{"docker", []string{"tag", img, dimg}, "", 0},
		{"docker", []string{"login", "-u", reg.Username, "-p", reg.Password, reg.Host}, "Login Succeeded", 0},
		{"docker", []string{"push", dimg}, "v2: digest: sha256:", 0},
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
