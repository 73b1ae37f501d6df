// Command critest-images makes, from a busybox root filesystem, the images
// that cri-tools' critest pulls, and serves them as a registry: there is no
// registry here and no internet. hack/critest.sh runs it.
//
//	critest-images build -rootfs DIR -nnp FILE -out DIR
//	critest-images serve -dir DIR -addr HOST:PORT
//
// build writes DIR/blobs/sha256/* and DIR/refs.json (each reference's
// manifest digest) for serve, and DIR/images.tar, an OCI image layout of
// every image for `ctr images import`. Each image is busybox's layer (the
// rootfs given, with busybox image's users and groups and two applets
// Debian's busybox lacks) and a layer of its own: what the spec that uses it
// checks (a USER, a web server, a setuid program, a file per tag).
//
// serve answers the registry API's reads (/v2/NAME/manifests/REF and
// /v2/NAME/blobs/DIGEST) for containerd's registry mirrors, one server for
// both registries: their repositories' names differ. A digest it does not
// hold is not found: critest's test-image-digest names a digest of the real
// image, which no image made here can have.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("critest-images: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: critest-images build|serve ...")
	}
	var err error
	switch os.Args[1] {
	case "build":
		fl := flag.NewFlagSet("build", flag.ExitOnError)
		rootfs := fl.String("rootfs", "", "busybox root filesystem (hack/mkrootfs.sh)")
		nnp := fl.String("nnp", "", "the static nnp program (hack/critest/nnp)")
		out := fl.String("out", "", "output directory")
		fl.Parse(os.Args[2:])
		if *rootfs == "" || *nnp == "" || *out == "" {
			log.Fatal("build: -rootfs, -nnp and -out are required")
		}
		err = build(*rootfs, *nnp, *out)
	case "serve":
		fl := flag.NewFlagSet("serve", flag.ExitOnError)
		dir := fl.String("dir", "", "what build wrote")
		addr := fl.String("addr", "127.0.0.1:5000", "address to listen on")
		fl.Parse(os.Args[2:])
		err = serve(*dir, *addr)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		log.Fatal(err)
	}
}

// The registries critest's images come from.
const (
	e2e      = "registry.k8s.io/e2e-test-images/"
	criTools = "gcr.io/k8s-staging-cri-tools/"
)

// file is an entry of an image's own layer.
type file struct {
	name string
	mode int64 // permission bits, and setuid
	data []byte
	link string // a symlink's target
	dir  bool
}

func dir(name string) file             { return file{name: name, mode: 0o755, dir: true} }
func script(name, body string) file    { return file{name: name, mode: 0o755, data: []byte(body)} }
func text(name, body string) file      { return file{name: name, mode: 0o644, data: []byte(body)} }
func symlink(name, target string) file { return file{name: name, mode: 0o777, link: target} }

// image is one image and the references it is known by.
type image struct {
	refs       []string
	user       string
	env        []string
	entrypoint []string
	cmd        []string
	files      []file
}

// The users and groups of the busybox image critest's specs expect
// (www-data, nobody, …).
const (
	passwd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`
	group = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`
)

// baseFiles complete Debian's busybox as the busybox image has it: its
// users, and ipcs and pgrep, which critest runs and Debian's busybox-static
// leaves out (ipcs -m is the segment table; pgrep NAME finds by name).
var baseFiles = []file{
	text("etc/passwd", passwd),
	text("etc/group", group),
	dir("home"),
	dir("var"),
	dir("var/run"),
	dir("var/www"),
	script("usr/bin/ipcs", "#!/bin/sh\n# ipcs -m: the shared memory segments of this IPC namespace.\ncat /proc/sysvipc/shm\n"),
	script("usr/bin/pgrep", "#!/bin/sh\n# pgrep NAME: the pids of the processes named NAME.\nexec pidof \"$1\"\n"),
}

// nginxFiles stand in for nginx: busybox httpd on $NGINX_PORT (80), its pid
// in /var/run/nginx.pid, and, as nginx, command name "nginx" (pidof nginx)
// and a command line naming its master process (critest reads
// /proc/1/cmdline). busybox runs the applet its argv[0]'s base name names:
// httpd.
var nginxFiles = []file{
	script("usr/sbin/nginx", `#!/bin/sh
echo $$ >/var/run/nginx.pid
exec -a "nginx: master process nginx -g daemon off;/httpd" /usr/lib/nginx/nginx -f -p "${NGINX_PORT:-80}" -h /usr/share/nginx/html
`),
	dir("usr/lib/nginx"),
	symlink("usr/lib/nginx/nginx", "/bin/busybox"),
	dir("usr/share/nginx"),
	dir("usr/share/nginx/html"),
	text("usr/share/nginx/html/index.html", "<h1>Welcome to nginx!</h1>\n"),
}

// images lists critest v1.34.0's Linux images (pkg/framework/util.go,
// pkg/validate/consts.go and the specs; cri-tools' images/ for how the
// gcr.io ones are built); nnp is the setuid program of nonewprivs.
func images(nnp []byte) []image {
	nginxCmd := []string{"nginx", "-g", "daemon off;"}
	withFile := func(name string, refs ...string) image {
		return image{refs: refs, cmd: []string{"sh"}, files: []file{text(name, name+"\n")}}
	}
	userImage := func(name, user string) image {
		return image{refs: []string{criTools + name + ":latest"}, user: user, cmd: []string{"sh"}}
	}
	return []image{
		{refs: []string{e2e + "busybox:1.29-2"}, cmd: []string{"sh"}},
		{refs: []string{e2e + "nginx:1.14-2"}, cmd: nginxCmd, files: nginxFiles},
		{refs: []string{criTools + "hostnet-nginx-" + runtime.GOARCH + ":latest"}, cmd: nginxCmd, env: []string{"NGINX_PORT=12003"}, files: nginxFiles},
		// Apache's first words on stderr, then busybox httpd (critest
		// looks for "httpd" in the container's log).
		{refs: []string{e2e + "httpd:2.4.39-4"}, cmd: []string{"httpd-foreground"}, files: []file{
			dir("usr/local"), dir("usr/local/bin"),
			script("usr/local/bin/httpd-foreground", "#!/bin/sh\necho \"httpd: serving /usr/local/apache2/htdocs on port 80\" >&2\nexec httpd -f -p 80 -h /usr/local/apache2/htdocs\n"),
			dir("usr/local/apache2"), dir("usr/local/apache2/htdocs"),
			text("usr/local/apache2/htdocs/index.html", "<html><body><h1>It works!</h1></body></html>\n"),
		}},
		// A setuid-root program that prints its effective uid.
		{refs: []string{e2e + "nonewprivs:1.3"}, entrypoint: []string{"/usr/local/bin/nnp"}, files: []file{
			dir("usr/local"), dir("usr/local/bin"), {name: "usr/local/bin/nnp", mode: 0o4755, data: nnp},
		}},
		userImage("test-image-user-uid", "1002"),
		userImage("test-image-user-username", "www-data"),
		userImage("test-image-user-uid-group", "1003:1004"),
		userImage("test-image-user-username-group", "www-data:1004"),
		{refs: []string{criTools + "test-image-predefined-group:latest"}, user: "1000", cmd: []string{"sh"}, files: []file{
			text("etc/passwd", passwd+"default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"),
			text("etc/group", group+"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"),
			dir("home/default-user"),
		}},
		withFile("test-image-latest", criTools+"test-image-latest:latest"),
		withFile("test-image-tag", criTools+"test-image-tag:test"),
		withFile("test-image-tag-all", criTools+"test-image-tag:all"),
		withFile("test-image-1", criTools+"test-image-1:latest"),
		withFile("test-image-2", criTools+"test-image-2:latest"),
		withFile("test-image-3", criTools+"test-image-3:latest"),
		withFile("test-image-tags", criTools+"test-image-tags:1", criTools+"test-image-tags:2", criTools+"test-image-tags:3"),
		// The pod sandbox image of hack/critest.sh's containerd. Not named
		// sleep: a spec looks for sleep processes in a pod's shared pid
		// namespace and expects none but its own.
		{refs: []string{"localhost/containerfd/pause:critest"}, entrypoint: []string{"/bin/busybox", "sleep", "2147483647"}},
	}
}

// mtime is every file's mtime: the same input gives the same digests.
var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// store holds blobs by digest.
type store map[string][]byte

func (s store) add(b []byte) (digest string, size int) {
	sum := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(sum[:])
	s[d] = b
	return d, len(b)
}

func build(rootfs, nnpPath, out string) error {
	nnp, err := os.ReadFile(nnpPath)
	if err != nil {
		return err
	}
	var base bytes.Buffer
	if err := baseLayer(&base, rootfs); err != nil {
		return fmt.Errorf("busybox layer from %s: %w", rootfs, err)
	}
	blobs := store{}
	baseDigest, baseSize := blobs.add(base.Bytes())

	refs := map[string]string{} // reference: manifest digest
	var index []map[string]any
	for _, img := range images(nnp) {
		layers := []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": baseDigest, "size": baseSize}}
		diffIDs := []string{baseDigest}
		if len(img.files) > 0 {
			var own bytes.Buffer
			if err := ownLayer(&own, img.files); err != nil {
				return fmt.Errorf("image %s: %w", img.refs[0], err)
			}
			d, n := blobs.add(own.Bytes())
			layers = append(layers, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n})
			diffIDs = append(diffIDs, d)
		}
		config := map[string]any{
			"architecture": runtime.GOARCH,
			"os":           "linux",
			"created":      mtime.Format(time.RFC3339),
			"config": map[string]any{
				"User":       img.user,
				"Env":        append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, img.env...),
				"Entrypoint": img.entrypoint,
				"Cmd":        img.cmd,
				"WorkingDir": "/",
			},
			"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
			"history": []map[string]any{{"created": mtime.Format(time.RFC3339), "created_by": "containerfd hack/critest: " + img.refs[0]}},
		}
		cb, _ := json.Marshal(config)
		cd, cn := blobs.add(cb)
		mb, _ := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
			"layers":        layers,
		})
		md, mn := blobs.add(mb)
		for _, ref := range img.refs {
			refs[ref] = md
			index = append(index, map[string]any{
				"mediaType": "application/vnd.oci.image.manifest.v1+json",
				"digest":    md,
				"size":      mn,
				"annotations": map[string]string{
					"io.containerd.image.name":          ref,
					"org.opencontainers.image.ref.name": ref[strings.LastIndex(ref, ":")+1:],
				},
			})
		}
	}

	if err := os.MkdirAll(filepath.Join(out, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	for d, b := range blobs {
		if err := os.WriteFile(blobPath(out, d), b, 0o644); err != nil {
			return err
		}
	}
	rb, _ := json.MarshalIndent(refs, "", "  ")
	if err := os.WriteFile(filepath.Join(out, "refs.json"), rb, 0o644); err != nil {
		return err
	}
	ib, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index})
	return layoutTar(filepath.Join(out, "images.tar"), blobs, ib)
}

func blobPath(dir, digest string) string {
	return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// baseLayer writes rootfs as a tar stream owned by root, in name order,
// with baseFiles in place of (or beside) its own.
func baseLayer(w io.Writer, rootfs string) error {
	tw := tar.NewWriter(w)
	// A file's first name, by inode: its other names are hard links.
	seen := map[uint64]string{}
	over := map[string]file{}
	for _, f := range baseFiles {
		over[f.name] = f
	}
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == rootfs {
			return err
		}
		rel, _ := filepath.Rel(rootfs, p)
		if f, ok := over[rel]; ok {
			delete(over, rel)
			return writeEntry(tw, f)
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
		if st, ok := info.Sys().(*syscall.Stat_t); ok && info.Mode().IsRegular() && st.Nlink > 1 {
			if first, ok := seen[st.Ino]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				seen[st.Ino] = filepath.ToSlash(rel)
			}
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		clean(hdr)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
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
	// Those the rootfs has not, in the order baseFiles gives (parents first).
	for _, f := range baseFiles {
		if _, ok := over[f.name]; ok {
			if err := writeEntry(tw, f); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// ownLayer writes an image's own files as a tar stream.
func ownLayer(w io.Writer, files []file) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		if err := writeEntry(tw, f); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeEntry(tw *tar.Writer, f file) error {
	hdr := &tar.Header{Name: f.name, Mode: f.mode, Typeflag: tar.TypeReg, Size: int64(len(f.data))}
	switch {
	case f.dir:
		hdr.Name, hdr.Typeflag, hdr.Size = f.name+"/", tar.TypeDir, 0
	case f.link != "":
		hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, f.link, 0
	}
	clean(hdr)
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	_, err := tw.Write(f.data)
	return err
}

// clean makes an entry root's, with the fixed mtime.
func clean(hdr *tar.Header) {
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = mtime, time.Time{}, time.Time{}
	hdr.Format = tar.FormatPAX
}

// layoutTar writes an OCI image layout (oci-layout, index.json, blobs) as a
// tar file.
func layoutTar(path string, blobs store, index []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: mtime, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	digests := make([]string, 0, len(blobs))
	for d := range blobs {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		if err := add("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), blobs[d]); err != nil {
			return err
		}
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add("index.json", index); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// serve answers the registry API's reads from what build wrote, and logs
// each request: the log says what a failed pull asked for.
func serve(dir, addr string) error {
	rb, err := os.ReadFile(filepath.Join(dir, "refs.json"))
	if err != nil {
		return err
	}
	refs := map[string]string{}
	if err := json.Unmarshal(rb, &refs); err != nil {
		return fmt.Errorf("refs.json: %w", err)
	}
	// By repository and tag, without the registry's host.
	byPath := map[string]string{}
	manifests := map[string]bool{}
	for ref, d := range refs {
		byPath[ref[strings.Index(ref, "/")+1:]] = d
		manifests[d] = true
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Printf("serving %d references on %s", len(refs), l.Addr())
	return http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := registry(w, r, dir, byPath, manifests)
		log.Printf("%s %s?%s: %d", r.Method, r.URL.Path, r.URL.RawQuery, code)
	}))
}

// registry answers one request, refs being the manifests by repository and
// tag, and returns its status code.
func registry(w http.ResponseWriter, r *http.Request, dir string, refs map[string]string, manifests map[string]bool) int {
	fail := func(code int) int {
		http.Error(w, http.StatusText(code), code)
		return code
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return fail(http.StatusMethodNotAllowed)
	}
	if r.URL.Path == "/v2/" {
		return http.StatusOK
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	if !ok {
		return fail(http.StatusNotFound)
	}
	var name, kind, ref string
	for _, k := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(p, k); i > 0 {
			name, kind, ref = p[:i], strings.Trim(k, "/"), p[i+len(k):]
			break
		}
	}
	digest := ref
	mediaType := "application/octet-stream"
	switch {
	case kind == "manifests" && strings.HasPrefix(ref, "sha256:"):
		if !manifests[ref] {
			return fail(http.StatusNotFound)
		}
		mediaType = "application/vnd.oci.image.manifest.v1+json"
	case kind == "manifests":
		d, ok := refs[name+":"+ref]
		if !ok {
			return fail(http.StatusNotFound)
		}
		digest, mediaType = d, "application/vnd.oci.image.manifest.v1+json"
	case kind != "blobs":
		return fail(http.StatusNotFound)
	}
	if len(strings.TrimPrefix(digest, "sha256:")) != 64 || strings.ContainsAny(digest, "/.") {
		return fail(http.StatusNotFound)
	}
	b, err := os.ReadFile(blobPath(dir, digest))
	if errors.Is(err, fs.ErrNotExist) {
		return fail(http.StatusNotFound)
	} else if err != nil {
		return fail(http.StatusInternalServerError)
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	if r.Method == http.MethodGet {
		w.Write(b)
	}
	return http.StatusOK
}
