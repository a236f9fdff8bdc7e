// Package oci builds OCI images on this machine - layers from files, .deb
// packages and directories, a config, a manifest - into a content store,
// and serves that store over the OCI distribution API (registry.go), so
// that containerd pulls the lab's images as it pulls any image. Nothing is
// downloaded: every byte of an image comes from a program built here or a
// Debian package on disk.
package oci

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"
)

// epoch is every entry's modification time: the same inputs give the same
// layer digest, so an unchanged image is not pulled again.
var epoch = time.Unix(0, 0).UTC()

// Layer is a filesystem change set, written as an uncompressed tar
// (application/vnd.oci.image.layer.v1.tar: its digest is its diff ID).
type Layer struct {
	entries map[string]entry
}

type entry struct {
	hdr  tar.Header
	data []byte
	// file, when set, is read at write time (large binaries).
	file string
}

// NewLayer returns an empty layer.
func NewLayer() *Layer { return &Layer{entries: map[string]entry{}} }

func clean(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// Dir adds a directory (and its missing parents, 0755 root).
func (l *Layer) Dir(p string, mode int64, uid, gid int) {
	p = clean(p)
	if p == "" {
		return
	}
	l.parents(p)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, Uid: uid, Gid: gid, ModTime: epoch}}
}

func (l *Layer) parents(p string) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := l.entries[d]; ok {
			return
		}
		l.entries[d] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}}
	}
}

// File adds a regular file with the given content.
func (l *Layer) File(p string, data []byte, mode int64, uid, gid int) {
	p = clean(p)
	l.parents(p)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Uid: uid, Gid: gid, Size: int64(len(data)), ModTime: epoch}, data: data}
}

// CopyFile adds a regular file whose content is the host file src.
func (l *Layer) CopyFile(p, src string, mode int64, uid, gid int) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	p = clean(p)
	l.parents(p)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Uid: uid, Gid: gid, Size: fi.Size(), ModTime: epoch}, file: src}
	return nil
}

// Symlink adds a symbolic link p -> target.
func (l *Layer) Symlink(p, target string) {
	p = clean(p)
	l.parents(p)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: p, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

// Has reports whether the layer has an entry at p.
func (l *Layer) Has(p string) bool {
	_, ok := l.entries[clean(p)]
	return ok
}

// Entry returns the header of the entry at p.
func (l *Layer) Entry(p string) (tar.Header, bool) {
	e, ok := l.entries[clean(p)]
	return e.hdr, ok
}

// Read returns the content of the regular file at p.
func (l *Layer) Read(p string) ([]byte, error) {
	e, ok := l.entries[clean(p)]
	if !ok || e.hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("layer: no regular file %s", p)
	}
	if e.file != "" {
		return os.ReadFile(e.file)
	}
	return e.data, nil
}

// Paths lists every entry, sorted.
func (l *Layer) Paths() []string {
	out := make([]string, 0, len(l.entries))
	for p := range l.entries {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// usrMerged maps Debian's top-level directories to /usr, as a usr-merged
// bookworm system has them (/bin -> usr/bin, ...): packages still ship
// files under /bin and /lib, which land behind the symlinks.
var usrMerged = []string{"bin", "sbin", "lib", "lib64"}

// UsrMerge adds bookworm's top-level symlinks (/bin -> usr/bin, ...).
func (l *Layer) UsrMerge() {
	for _, d := range usrMerged {
		l.Dir("usr/"+d, 0o755, 0, 0)
		l.Symlink(d, "usr/"+d)
	}
}

func usrMergedPath(p string) string {
	for _, d := range usrMerged {
		if p == d || strings.HasPrefix(p, d+"/") {
			return "usr/" + p
		}
	}
	return p
}

// Deb unpacks a Debian package's files into the layer (dpkg-deb
// --fsys-tarfile; maintainer scripts do not run: the image builder does
// what they would, such as creating users). Paths under /bin, /sbin, /lib
// and /lib64 go to /usr, as on a usr-merged system. Hard links become
// copies; documentation is left out.
func (l *Layer) Deb(debPath string) error {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", debPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dpkg-deb %s: %w", debPath, err)
	}
	rerr := l.addTar(tar.NewReader(out))
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", debPath, err, strings.TrimSpace(stderr.String()))
	}
	if rerr != nil {
		return fmt.Errorf("unpack %s: %w", debPath, rerr)
	}
	return nil
}

func (l *Layer) addTar(tr *tar.Reader) error {
	links := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		p := usrMergedPath(clean(h.Name))
		if p == "" || strings.HasPrefix(p, "usr/share/doc/") || strings.HasPrefix(p, "usr/share/man/") || strings.HasPrefix(p, "usr/share/info/") || strings.HasPrefix(p, "usr/share/locale/") {
			continue
		}
		mode := h.Mode & 0o7777
		switch h.Typeflag {
		case tar.TypeDir:
			if hd, ok := l.entries[p]; ok && hd.hdr.Typeflag == tar.TypeSymlink {
				continue // a usr-merge symlink stays one
			}
			l.Dir(p, mode, h.Uid, h.Gid)
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			l.File(p, data, mode, h.Uid, h.Gid)
		case tar.TypeSymlink:
			l.Symlink(p, h.Linkname)
		case tar.TypeLink:
			links[p] = usrMergedPath(clean(h.Linkname))
		}
	}
	for p, target := range links {
		e, ok := l.entries[target]
		if !ok {
			return fmt.Errorf("hard link %s to missing %s", p, target)
		}
		e.hdr.Name = p
		l.parents(p)
		l.entries[p] = e
	}
	return nil
}

// writeTo writes the layer as a tar stream, parents before children.
func (l *Layer) writeTo(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, p := range l.Paths() {
		e := l.entries[p]
		h := e.hdr
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			return fmt.Errorf("layer %s: %w", p, err)
		}
		switch {
		case e.file != "":
			f, err := os.Open(e.file)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
			if n != h.Size {
				return fmt.Errorf("layer %s: %s changed while being read", p, e.file)
			}
		case h.Typeflag == tar.TypeReg:
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// digester hashes what is written through it.
type digester struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newDigester(w io.Writer) *digester { return &digester{w: w, h: sha256.New()} }

func (d *digester) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	return n, err
}

func (d *digester) digest() string { return "sha256:" + hex.EncodeToString(d.h.Sum(nil)) }
