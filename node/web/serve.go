package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strings"
)

// Codes of the error bodies the page's server answers /v1/ requests with
// when it refuses them itself, before the API sees them. The page shows
// how to open it again on CodeUnauthorized.
const (
	// CodeUnauthorized: the request has no valid cookie (the browser never
	// opened the page with the token, or the token was replaced).
	CodeUnauthorized = "web_unauthorized"
	// CodeForeignHost: the Host header names another host (as a DNS name
	// rebound to 127.0.0.1 does).
	CodeForeignHost = "web_foreign_host"
	// CodeCrossSite: the request comes from another origin or site.
	CodeCrossSite = "web_cross_site"
	// CodeForbidden: the page may not call this route (/v1/web).
	CodeForbidden = "web_forbidden"
)

// csp is the page's content security policy: its own scripts, styles and
// images, requests to itself only, no frames, no plugins, no base.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// secureHeaders sets the headers every answer carries.
func secureHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// ServeHTTP checks the request's Host, origin and cookie (see the package
// doc), then serves the page's files, or passes a /v1/ request to the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w.Header())
	p := path.Clean("/" + r.URL.Path)
	api := p == "/v1" || strings.HasPrefix(p, "/v1/")
	if !s.hosts[strings.ToLower(r.Host)] {
		s.refuse(w, api, http.StatusForbidden, CodeForeignHost, fmt.Sprintf("This page answers to %s only, not to the host %.64q.", s.Addr(), r.Host))
		return
	}
	if why := s.crossSite(r, api); why != "" {
		s.refuse(w, api, http.StatusForbidden, CodeCrossSite, why)
		return
	}
	tok := s.token()
	if p == "/" && r.URL.Query().Has("token") && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		s.exchange(w, r, tok)
		return
	}
	if c, err := r.Cookie(tok.cookieName); err != nil || !tok.cookieMatches(c.Value) {
		if api {
			s.refuse(w, api, http.StatusUnauthorized, CodeUnauthorized, "This browser has not opened the page with its token, or the token was replaced; run `peercollab web --open`.")
			return
		}
		openPage(w, http.StatusUnauthorized, "")
		return
	}
	// What the token let in ends when the token is replaced.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(tok.ctx, cancel)()
	r = r.WithContext(ctx)
	switch {
	case p == "/v1/web" || strings.HasPrefix(p, "/v1/web/"):
		s.refuse(w, api, http.StatusForbidden, CodeForbidden, "The page cannot read or replace its own token; use `peercollab web` on the command line.")
	case api:
		r.Header.Del("Cookie") // the API has no use for it
		w.Header().Set("Cache-Control", "no-store")
		s.api.ServeHTTP(w, r)
	default:
		s.assets.serve(w, r)
	}
}

// crossSite says why r is refused as coming from another origin or site,
// or "" when it is not. A browser sends Origin with every request but
// same-origin GETs and navigations; it must be the page's own. Sec-Fetch-
// Site (sent by current browsers) must be same-origin or none (typed, a
// bookmark, opened by another program): "same-site" is refused too, since
// every port of 127.0.0.1 is the same site, and SameSite cookies do not
// keep those apart. A top-level navigation to the page from elsewhere is
// let through (it returns the page or the token exchange, no data; the
// page cannot be framed), not one to the API.
func (s *Server) crossSite(r *http.Request, api bool) string {
	if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(o, "http://"+r.Host) {
		return fmt.Sprintf("The page answers requests from its own origin %s only, not from %.64q.", s.origin, o)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return ""
	}
	if !api && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document" {
		return ""
	}
	return "The page answers requests from its own pages only, not from another site's."
}

// refuse answers a refused request: an error body like the API's for a
// /v1/ request, one sentence of text otherwise.
func (s *Server) refuse(w http.ResponseWriter, api bool, status int, code, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	if api {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// exchange takes the token from the address: a right one gets the cookie
// and a page that goes on to the page proper without the token in its
// address; a wrong one the page that says how to open the page. It is no
// redirect: a navigation that came from elsewhere (a file:// page that
// `peercollab web --open` wrote, another program) keeps its cross-site
// mark through redirects, and the browser would then withhold the
// SameSite=Strict cookie from the page; the refresh below is the page's
// own navigation.
func (s *Server) exchange(w http.ResponseWriter, r *http.Request, tok *token) {
	if !tok.matches(r.URL.Query().Get("token")) {
		openPage(w, http.StatusForbidden, "The address you opened holds an old or wrong token (it is replaced by `peercollab web --rotate`).")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     tok.cookieName,
		Value:    tok.cookieValue,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, `<!doctype html><html lang="en"><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=/"><title>peercollab</title><p><a href="/">Open peercollab</a></p></html>`)
}

// openStyle is the style of the page that says how to open the page; its
// hash is in that page's content security policy.
const openStyle = `body{font:16px/1.5 system-ui,sans-serif;max-width:38rem;margin:3rem auto;padding:0 1rem;color:#1d2733}` +
	`code,pre{font:0.95em ui-monospace,monospace;background:#eef2f6;border-radius:4px;padding:0.1em 0.3em}pre{padding:0.6em 0.8em}` +
	`.note{color:#8a4b00}`

var openCSP = func() string {
	sum := sha256.Sum256([]byte(openStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// openPage is all that a browser without the cookie gets: how to open the
// page. It says nothing of the node.
func openPage(w http.ResponseWriter, status int, note string) {
	h := w.Header()
	h.Set("Content-Security-Policy", openCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if note != "" {
		note = `<p class="note">` + note + `</p>`
	}
	fmt.Fprint(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">`+
		`<title>peercollab: open the page with its token</title><style>`+openStyle+`</style></head><body><main>`+
		`<h1>peercollab</h1>`+note+
		`<p>This page shows your peercollab node to you alone: it opens only with the token of your daemon. On this computer, run</p>`+
		`<pre>peercollab web --open</pre>`+
		`<p>to open it in your browser, or <code>peercollab web</code> and open the address it prints. Add <code>--home DIR</code> when your daemon keeps its data elsewhere than <code>~/.peercollab</code>.</p>`+
		`<p>The browser keeps a cookie until it closes; the token stays the same until <code>peercollab web --rotate</code> replaces it.</p>`+
		`</main></body></html>`)
}
