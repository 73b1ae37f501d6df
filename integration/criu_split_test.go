package integration

import (
	"debug/buildinfo"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// criuModules are the modules of CRIU's RPC types: bin/containerfd leaves
// them to bin/containerfd-criu, so that no other command pays for their
// size and init (docs/checkpoint.md).
var criuModules = []string{"github.com/checkpoint-restore/go-criu/", "google.golang.org/protobuf"}

func linkedCRIUModules(t *testing.T, path string) []string {
	t.Helper()
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range bi.Deps {
		for _, m := range criuModules {
			if strings.HasPrefix(d.Path, m) {
				got = append(got, d.Path)
			}
		}
	}
	return got
}

// containerfd links neither go-criu nor protobuf; containerfd-criu beside
// it has both.
func TestCRIUBinarySplit(t *testing.T) {
	if got := linkedCRIUModules(t, binary); len(got) != 0 {
		t.Errorf("%s links %v: CRIU's RPC belongs in containerfd-criu", binary, got)
	}
	if got := linkedCRIUModules(t, binary+"-criu"); len(got) != len(criuModules) {
		t.Errorf("%s-criu links %v, want modules %v", binary, got, criuModules)
	}
}

// Without containerfd-criu beside it, checkpoint and restore say where it
// should be and make nothing, and features says checkpoint is unusable.
func TestCheckpointWithoutCRIUBinary(t *testing.T) {
	e := newEnv(t, "true")
	dir := t.TempDir()
	alone := filepath.Join(dir, "containerfd")
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "containerfd-criu")
	images := filepath.Join(dir, "images")
	for _, args := range [][]string{
		{"checkpoint", "--image-path", images, e.id},
		{"restore", "-d", "--image-path", images, "--bundle", e.bundle, e.id},
	} {
		r := runResult(t, exec.Command(alone, append([]string{"--root", e.root}, args...)...), args)
		if r.code != 1 || !strings.Contains(r.stderr, args[0]+": "+missing+": no such file or directory") || !strings.Contains(r.stderr, "make install") {
			t.Errorf("%s without %s: %v", args[0], missing, r)
		}
	}
	if _, err := os.Stat(images); !os.IsNotExist(err) {
		t.Errorf("image path made: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.root, e.id)); !os.IsNotExist(err) {
		t.Errorf("state directory made: %v", err)
	}
	var f struct {
		Annotations map[string]string `json:"annotations"`
	}
	r := runResult(t, exec.Command(alone, "features"), []string{"features"})
	if err := json.Unmarshal([]byte(r.stdout), &f); err != nil {
		t.Fatalf("features: %v: %v", r, err)
	}
	if f.Annotations["io.github.containerfd.checkpoint.enabled"] != "false" || !strings.Contains(f.Annotations["io.github.containerfd.criu"], missing) {
		t.Errorf("features without %s: %v", missing, f.Annotations)
	}
}
