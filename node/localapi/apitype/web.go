package apitype

// WebPage says where the daemon serves its web page and what opens it: the
// answer to GET /v1/web and POST /v1/web/token. The page is served on a
// loopback address only, and only to a browser that brings the token once
// (OpenURL): the page exchanges it for a cookie and drops it from the
// address.
type WebPage struct {
	// Enabled is false when the daemon serves no page (it was started
	// with --web off); the other fields are then empty.
	Enabled bool `json:"enabled"`
	// URL is the page's address, such as http://127.0.0.1:4738/.
	URL string `json:"url,omitempty"`
	// Token opens the page. It is kept in the data directory (web.token,
	// mode 0600) and stays the same across restarts until it is replaced
	// (POST /v1/web/token).
	Token string `json:"token,omitempty"`
	// OpenURL is URL with the token: the address to open in a browser.
	OpenURL string `json:"open_url,omitempty"`
}

// CodeNoWebPage: the daemon serves no web page (it was started with
// --web off).
const CodeNoWebPage = "no_web_page"
