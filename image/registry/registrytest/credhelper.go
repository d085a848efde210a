package registrytest

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CredHelper is a docker-credential-helpers program written by a test: a
// shell script keeping each server's credential JSON in a file, and
// logging every action it ran.
type CredHelper struct {
	// Name is what credsStore/credHelpers name ("estibatest-…"); the
	// program is docker-credential-<Name>, in BinDir.
	Name   string
	BinDir string
	// StoreDir holds one file per server (hex of the server URL).
	StoreDir string
}

// credHelperScript speaks the protocol: get/erase read the server URL on
// stdin, store reads {"ServerURL","Username","Secret"}, list prints
// {"url":"user"}; an unknown server is "credentials not found in native
// keychain" on stdout with exit 1, as the real helpers answer.
const credHelperScript = `#!/bin/sh
dir=@DIR@
echo "$1" >>"$dir/.calls"
key() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
notfound() { echo "credentials not found in native keychain"; exit 1; }
case "$1" in
get)	url=$(cat); f="$dir/$(key "$url")"; [ -f "$f" ] || notfound; cat "$f" ;;
store)	in=$(cat)
	url=$(printf %s "$in" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
	[ -n "$url" ] || { echo "no ServerURL"; exit 1; }
	printf %s "$in" >"$dir/$(key "$url")" ;;
erase)	url=$(cat); f="$dir/$(key "$url")"; [ -f "$f" ] || notfound; rm -f "$f" ;;
list)	sep=""; printf "{"
	for f in "$dir"/*; do [ -f "$f" ] || continue
		url=$(sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p' "$f"); user=$(sed -n 's/.*"Username":"\([^"]*\)".*/\1/p' "$f")
		printf '%s"%s":"%s"' "$sep" "$url" "$user"; sep=","
	done; printf "}\n" ;;
*)	echo "unknown action: $1"; exit 1 ;;
esac
`

// NewCredHelper writes a helper under t.TempDir() and puts its directory
// first on PATH for the rest of the test (t.Setenv: not for parallel tests).
func NewCredHelper(t *testing.T) *CredHelper {
	t.Helper()
	base := t.TempDir()
	h := &CredHelper{Name: "estibatest", BinDir: filepath.Join(base, "bin"), StoreDir: filepath.Join(base, "store")}
	for _, d := range []string{h.BinDir, h.StoreDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	script := strings.ReplaceAll(credHelperScript, "@DIR@", shellQuote(h.StoreDir))
	if err := os.WriteFile(filepath.Join(h.BinDir, "docker-credential-"+h.Name), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", h.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return h
}

// Stored returns the JSON the helper keeps for serverURL ("" if none).
func (h *CredHelper) Stored(t *testing.T, serverURL string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.StoreDir, hex.EncodeToString([]byte(serverURL))))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Calls returns the actions the helper ran, in order.
func (h *CredHelper) Calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.StoreDir, ".calls"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
