package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// The page: plain HTML, CSS and ES modules, served as they are.
//
//go:embed assets
var assetFS embed.FS

// asset is one file of the page, with its gzip form when that is smaller.
type asset struct {
	body, gz []byte
	etag     string
	ctype    string
}

// assets are the page's files by the path they are served at.
type assets struct{ files map[string]*asset }

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// loadAssets reads the embedded files, and compresses them once.
func loadAssets() (*assets, error) {
	a := &assets{files: map[string]*asset{}}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("web: no content type for %s", p)
		}
		sum := sha256.Sum256(body)
		f := &asset{body: body, ctype: ctype, etag: `W/"` + hex.EncodeToString(sum[:8]) + `"`}
		if !strings.HasPrefix(ctype, "image/png") {
			var b bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
			zw.Write(body)
			zw.Close()
			if b.Len() < len(body) {
				f.gz = b.Bytes()
			}
		}
		a.files[strings.TrimPrefix(p, "assets")] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if a.files["/index.html"] == nil {
		return nil, fmt.Errorf("web: no index.html among the page's files")
	}
	a.files["/"] = a.files["/index.html"]
	return a, nil
}

// serve answers a GET or HEAD of one of the page's files. The browser
// revalidates them at each load (ETag), so that a new daemon's page is
// never mixed with an old one's files.
func (a *assets) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "The page's files take GET and HEAD only.", http.StatusMethodNotAllowed)
		return
	}
	f := a.files[r.URL.Path]
	if f == nil {
		http.Error(w, "No such page.", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	h.Set("Vary", "Accept-Encoding")
	for _, t := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		if strings.TrimSpace(t) == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	body := f.body
	if f.gz != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = f.gz
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, e := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(e), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
