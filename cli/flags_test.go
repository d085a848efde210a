package cli

import (
	"io"
	"reflect"
	"testing"

	"github.com/spf13/pflag"
)

// A stringsValue flag collects every use, in order, as pflag's stringArray.
func TestStringsValue(t *testing.T) {
	var got []string
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	stringArrayVarP(fs, &got, "env", "e", "")
	if err := fs.Parse([]string{"-e", "A=1,2", "--env", "B", "--env="}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"A=1,2", "B", ""}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if f := fs.Lookup("env"); f.Value.Type() != "stringArray" || f.DefValue != "" {
		t.Fatalf("type %q default %q", f.Value.Type(), f.DefValue)
	}
}
