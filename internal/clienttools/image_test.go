package clienttools

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// WriteImage's tarball is an OCI layout that also reads as a docker
// archive, its layer holds the tree as root's, and the same tree gives the
// same digest.
func TestWriteImage(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), []byte("not really"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/bin/busybox", filepath.Join(root, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	img := Image{Name: "docker.io/library/busybox:t", Cmd: []string{"sh"}}
	p1, p2 := filepath.Join(t.TempDir(), "1.tar"), filepath.Join(t.TempDir(), "2.tar")
	d1, size, err := WriteImage(p1, root, img)
	if err != nil {
		t.Fatal(err)
	}
	d2, _, err := WriteImage(p2, root, img)
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 || !strings.HasPrefix(d1, "sha256:") {
		t.Errorf("manifest digests %q and %q: want the same sha256", d1, d2)
	}
	files := readTar(t, p1)
	for _, name := range []string{"oci-layout", "index.json", "manifest.json", "blobs/sha256/" + strings.TrimPrefix(d1, "sha256:")} {
		if _, ok := files[name]; !ok {
			t.Errorf("%s missing from the tarball", name)
		}
	}
	var index struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Digest != d1 || index.Manifests[0].Annotations["io.containerd.image.name"] != img.Name {
		t.Errorf("index.json: %s", files["index.json"])
	}
	var docker []struct {
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &docker); err != nil {
		t.Fatal(err)
	}
	if len(docker) != 1 || len(docker[0].Layers) != 1 || docker[0].RepoTags[0] != img.Name {
		t.Fatalf("manifest.json: %s", files["manifest.json"])
	}
	layer := files[docker[0].Layers[0]]
	if len(layer) != size {
		t.Errorf("layer of %d bytes, WriteImage said %d", len(layer), size)
	}
	tr := tar.NewReader(bytes.NewReader(layer))
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", h.Name, h.Uid, h.Gid)
		}
		got[h.Name] = h.Linkname
	}
	if l, ok := got["bin/sh"]; !ok || l != "/bin/busybox" {
		t.Errorf("layer: bin/sh -> %q (present %v), want the symlink to /bin/busybox", l, ok)
	}
	if _, ok := got["bin/busybox"]; !ok {
		t.Errorf("layer lacks bin/busybox: %v", got)
	}
}

func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
}
