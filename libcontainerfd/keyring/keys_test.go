package keyring

import (
	"errors"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	keys := []Key{
		{Serial: 11, Type: "user", Description: "db"},
		{Serial: 12, Type: "user", Description: "svc:tok"},
		{Serial: 13, Type: "logon", Description: "svc:tok"},
		{Serial: 14, Type: "user", Description: "11"},
		{Serial: 15}, // not viewable
	}
	for _, c := range []struct {
		key    string
		serial int
		err    string
	}{
		{"db", 11, ""},
		{"12", 12, ""},
		{"11", 11, ""}, // a serial wins over a description
		{"15", 15, ""},
		{"svc:tok", 0, "give a serial"},
		{"nope", 0, "no such key"},
		{"99", 0, "no such key"},
		{"", 0, "no such key"},
	} {
		k, err := Match(keys, c.key)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Match(%q) = %v, %v; want error with %q", c.key, k, err, c.err)
			}
			continue
		}
		if err != nil || k.Serial != c.serial {
			t.Errorf("Match(%q) = %v, %v; want serial %d", c.key, k, err, c.serial)
		}
	}
	if _, err := Match(keys, "nope"); !errors.Is(err, ErrNoKey) {
		t.Errorf("Match of a missing key: %v, want ErrNoKey", err)
	}
}

func TestCheckKey(t *testing.T) {
	for _, c := range []struct {
		typ, desc string
		n         int
		ok        bool
	}{
		{"user", "db", 1, true},
		{"user", "db", MaxPayload, true},
		{"user", "db", MaxPayload + 1, false},
		{"user", "db", 0, false},
		{"user", "", 1, false},
		{"logon", "svc:name", 5, true},
		{"logon", "name", 5, false},
		{"logon", ":name", 5, false},
		{"keyring", "k", 1, false},
		{"big_key", "k", 1, false},
	} {
		err := CheckKey(c.typ, c.desc, make([]byte, c.n))
		if (err == nil) != c.ok {
			t.Errorf("CheckKey(%q, %q, %d bytes) = %v, want ok %v", c.typ, c.desc, c.n, err, c.ok)
		}
	}
}
