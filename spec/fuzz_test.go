package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfig feeds arbitrary config.json text through Parse, Validate and
// Translate: each must return (an error or a plan), never panic or hang.
// Seeds: the default configs and the broken ones in testdata.
func FuzzConfig(f *testing.F) {
	for _, rootless := range []bool{false, true} {
		b, err := json.Marshal(Default(rootless))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	dirs, _ := filepath.Glob("testdata/*/config.json")
	for _, p := range dirs {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(strings.Repeat("[", 20000)))
	f.Add([]byte(`{"ociVersion":"1.0.0","process":{"args":["\xff\xfe"],"cwd":"/"},"root":{"path":"rootfs"}}`))
	bundle := f.TempDir()
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		if s.Linux != nil {
			// Namespace paths are opened to check their type: keep the
			// fuzzer off the machine's files.
			for i := range s.Linux.Namespaces {
				s.Linux.Namespaces[i].Path = ""
			}
		}
		Validate(s, bundle)
		Translate(s, bundle)
	})
}

func TestHugeAndDeepConfigs(t *testing.T) {
	bundle := t.TempDir()
	big := make([]byte, MaxConfigSize+10)
	for i := range big {
		big[i] = ' '
	}
	os.WriteFile(filepath.Join(bundle, ConfigFile), big, 0o644)
	if _, err := Load(bundle); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("a config over the size limit: %v", err)
	}
	deep := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	if _, err := Parse([]byte(deep)); err == nil {
		t.Error("a 100000-deep config parsed")
	}
	if _, err := Parse([]byte("{\"ociVersion\":\"\xff\"}")); err != nil {
		// Invalid UTF-8 inside strings is replaced, not an error, in
		// encoding/json; Validate then refuses the version.
		t.Logf("invalid UTF-8: %v", err)
	}
}
