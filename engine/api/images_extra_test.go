package api

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/estiba/estiba/engine/errdefs"
)

func TestDecodeRegistryAuth(t *testing.T) {
	js := `{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}`
	for _, tc := range []struct {
		name, header string
		ok           bool
	}{
		{"url padded", base64.URLEncoding.EncodeToString([]byte(js)), true},
		{"url raw", base64.RawURLEncoding.EncodeToString([]byte(js)), true},
		{"std", base64.StdEncoding.EncodeToString([]byte(js)), true},
		{"not base64", "%%%", false},
		{"not json", base64.URLEncoding.EncodeToString([]byte("nope")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := DecodeRegistryAuth(tc.header)
			if !tc.ok {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("err %v, want invalid", err)
				}
				return
			}
			if err != nil || a.Username != "u" || a.Password != "p?>" || a.ServerAddress != "127.0.0.1:5000" {
				t.Fatalf("%+v %v", a, err)
			}
		})
	}
}

func TestDanglingFilter(t *testing.T) {
	for _, tc := range []struct {
		f       map[string][]string
		all     bool
		errWant error
	}{
		{nil, false, nil},
		{map[string][]string{"dangling": {"true"}}, false, nil},
		{map[string][]string{"dangling": {"false"}}, true, nil},
		{map[string][]string{"dangling": {"maybe"}}, false, errdefs.ErrInvalid},
		{map[string][]string{"until": {"24h"}}, false, errdefs.ErrNotImplemented},
	} {
		all, err := danglingFilter(tc.f)
		if all != tc.all || !errors.Is(err, tc.errWant) || (tc.errWant == nil) != (err == nil) {
			t.Errorf("%v: all=%v err=%v", tc.f, all, err)
		}
	}
}
