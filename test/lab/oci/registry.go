package oci

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
)

// Registry serves a Store over the read side of the OCI distribution API
// (GET and HEAD of /v2/, manifests and blobs), which is what containerd
// needs to pull. The lab's containerds reach it as a mirror of every
// registry an image names (docker.io, quay.io, ...): containerd then sends
// the original registry in the "ns" query parameter, so
// quay.io/lbstack/lbstack:v1 is looked up as that whole name. A request
// without it (an image named after the registry's own address) is looked
// up under the Host it was sent to.
type Registry struct {
	Store *Store
	Log   *log.Logger
}

func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		regError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "the lab registry is read-only")
		return
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rest, ok := strings.CutPrefix(req.URL.Path, "/v2/")
	if !ok {
		regError(w, http.StatusNotFound, "NOT_FOUND", "not an OCI distribution path")
		return
	}
	if rest == "" {
		w.WriteHeader(http.StatusOK)
		return
	}
	registry := req.URL.Query().Get("ns")
	if registry == "" {
		registry = req.Host
	}
	if i := strings.LastIndex(rest, "/manifests/"); i > 0 {
		r.manifest(w, req, registry+"/"+rest[:i], rest[i+len("/manifests/"):])
		return
	}
	if i := strings.LastIndex(rest, "/blobs/"); i > 0 {
		r.blob(w, req, rest[i+len("/blobs/"):], "application/octet-stream")
		return
	}
	regError(w, http.StatusNotFound, "NOT_FOUND", "unknown path")
}

func (r *Registry) logf(format string, a ...any) {
	if r.Log != nil {
		r.Log.Printf(format, a...)
	}
}

func (r *Registry) manifest(w http.ResponseWriter, req *http.Request, name, reference string) {
	// docker.io's official images are library/<name>; a mirror request
	// carries that path already.
	digest, err := r.Store.Resolve(name, reference)
	if err != nil {
		r.logf("%s %s:%s: not found", req.Method, name, reference)
		regError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", err.Error())
		return
	}
	r.logf("%s %s:%s -> %s", req.Method, name, reference, digest)
	r.blob(w, req, digest, MediaTypeManifest)
}

func (r *Registry) blob(w http.ResponseWriter, req *http.Request, digest, mediaType string) {
	p, err := r.Store.BlobPath(digest)
	if err != nil {
		code := "BLOB_UNKNOWN"
		if !errors.Is(err, os.ErrNotExist) {
			code = "DIGEST_INVALID"
		}
		regError(w, http.StatusNotFound, code, err.Error())
		return
	}
	f, err := os.Open(p)
	if err != nil {
		regError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		regError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Etag", `"`+digest+`"`)
	// ServeContent answers HEAD, ranges and Content-Length.
	http.ServeContent(w, req, "", fi.ModTime(), f)
}

func regError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`+"\n", code, msg)
}
