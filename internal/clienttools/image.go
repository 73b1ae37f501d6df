package clienttools

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Image describes an image of one layer, the tree at a rootfs directory
// (e.g. a busybox one).
type Image struct {
	Name       string   // full reference, e.g. "docker.io/library/busybox:cfd"
	Entrypoint []string // image config Entrypoint
	Cmd        []string // image config Cmd
	Env        []string // image config Env; PATH is always set
}

// WriteImage writes img, with rootfs as its one uncompressed layer, to path
// as an OCI image layout tarball (oci-layout, index.json,
// blobs/sha256/…) that also carries a docker-archive manifest.json pointing
// at the same blobs, so that `ctr images import`, `podman load` and `docker
// load` all take it. No registry is needed; the same input gives the same
// digests.
func WriteImage(path, rootfs string, img Image) (manifestDigest string, layerSize int, err error) {
	var layer bytes.Buffer
	if err := tarDir(&layer, rootfs); err != nil {
		return "", 0, fmt.Errorf("image %s: layer: %w", img.Name, err)
	}
	blobs := map[string][]byte{}
	add := func(v any) (string, int) {
		b, ok := v.([]byte)
		if !ok {
			b, _ = json.Marshal(v) // maps of strings and slices
		}
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = b
		return d, len(b)
	}
	layerDigest, layerSize := add(layer.Bytes())

	env := append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, img.Env...)
	configDigest, configSize := add(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      "2024-01-01T00:00:00Z",
		"config": map[string]any{
			"Env":        env,
			"Entrypoint": img.Entrypoint,
			"Cmd":        img.Cmd,
			"WorkingDir": "/",
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
		"history": []map[string]any{{
			"created":    "2024-01-01T00:00:00Z",
			"created_by": "containerfd integration/clients: Debian's busybox-static",
		}},
	})
	manifestDigest, manifestSize := add(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": configSize},
		"layers":        []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layerSize}},
	})
	tag := img.Name[strings.LastIndex(img.Name, ":")+1:]
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []map[string]any{{
			"mediaType": "application/vnd.oci.image.manifest.v1+json",
			"digest":    manifestDigest,
			"size":      manifestSize,
			"annotations": map[string]string{
				"io.containerd.image.name":          img.Name,
				"org.opencontainers.image.ref.name": tag,
			},
		}},
	})
	blobPath := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	dockerManifest, _ := json.Marshal([]map[string]any{{
		"Config":   blobPath(configDigest),
		"RepoTags": []string{img.Name},
		"Layers":   []string{blobPath(layerDigest)},
	}})

	f, err := os.Create(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	writeFile := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: imageTime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: imageTime, Typeflag: tar.TypeDir}); err != nil {
			return "", 0, err
		}
	}
	digests := make([]string, 0, len(blobs))
	for d := range blobs {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		if err := writeFile(blobPath(d), blobs[d]); err != nil {
			return "", 0, err
		}
	}
	for _, e := range []struct {
		name string
		b    []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", index}, {"manifest.json", dockerManifest}} {
		if err := writeFile(e.name, e.b); err != nil {
			return "", 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	return manifestDigest, layerSize, f.Close()
}

// imageTime is every file's mtime in written images: the same input gives
// the same digests.
var imageTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// tarDir writes the tree at dir as a tar stream owned by root, in name order.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = imageTime, time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
