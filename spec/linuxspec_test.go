package spec

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// TestLinuxSpecFields: linuxSpec has every field of specs.Spec but the other
// platforms' sections, as specs.Spec declares it, so that a new version of
// runtime-spec cannot add a field that Parse silently drops.
func TestLinuxSpecFields(t *testing.T) {
	other := map[string]bool{"Solaris": true, "Windows": true, "VM": true, "ZOS": true, "FreeBSD": true}
	var want []reflect.StructField
	st := reflect.TypeFor[specs.Spec]()
	for i := range st.NumField() {
		if f := st.Field(i); !other[f.Name] {
			want = append(want, f)
		}
	}
	lt := reflect.TypeFor[linuxSpec]()
	if lt.NumField() != len(want) {
		t.Fatalf("linuxSpec has %d fields, specs.Spec %d besides other platforms'", lt.NumField(), len(want))
	}
	for i, w := range want {
		if f := lt.Field(i); f.Name != w.Name || f.Type != w.Type || f.Tag != w.Tag {
			t.Errorf("linuxSpec field %d: %s %s %q, specs.Spec has %s %s %q", i, f.Name, f.Type, f.Tag, w.Name, w.Type, w.Tag)
		}
	}
}

func TestParseKeepsEverything(t *testing.T) {
	want := Default(false)
	want.Domainname = "example.org"
	want.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}}}
	want.Annotations = map[string]string{"a": "b"}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(Marshal(x)) = %+v, %v; want x = %+v", got, err, want)
	}
}
