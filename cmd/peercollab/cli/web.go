package cli

import (
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// webOpenFile is the page that `web --open` hands the browser, in the data
// directory: it sends the browser on to the page's address with the token,
// which so never appears on a command line (other users of the machine can
// read those).
const webOpenFile = "web-open.html"

// WebCmd is `peercollab web`: the address of the daemon's web page, with
// its token. It is a client of the local API like the other commands; main
// adds it with the daemon's commands (daemon.Commands), since it goes with
// the daemon's --web.
func (e *Env) WebCmd() *cobra.Command {
	var open, rotate, asJSON bool
	cmd := &cobra.Command{
		Use:   "web [--open] [--rotate]",
		Short: "Print the address of the daemon's web page with its token; --open opens it",
		Long: `The daemon serves a web page for people on a loopback address: who is near,
contacts, invitations and sessions, live. It opens only with the token of
this data directory: web prints the page's address with the token, which a
browser exchanges for a cookie (until it closes) the first time it opens it.
Anyone who has the address with the token can use the page as you: keep it
to yourself.

--open opens it in your browser (xdg-open, open, or the Windows shell)
through a file in the data directory, so that the token is never on a
command line. --rotate replaces the token: browsers that opened the page
with the old one must open it again. The daemon serves no page when started
with --web off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := e.client()
			var page apitype.WebPage
			var err error
			if rotate {
				page, err = c.RotateWebToken(cmd.Context())
			} else {
				page, err = c.WebPage(cmd.Context())
			}
			if err != nil {
				return err
			}
			if !page.Enabled {
				return errors.New("the daemon serves no web page: it was started with --web off")
			}
			if rotate {
				os.Remove(filepath.Join(e.Home, webOpenFile)) // it holds the old token
				fmt.Fprintln(e.Stderr, "The token is replaced: browsers that opened the page with the old one must open it again.")
			}
			if asJSON {
				return e.PrintJSON(page)
			}
			if !open {
				fmt.Fprintln(e.Stdout, page.OpenURL)
				return nil
			}
			fmt.Fprintf(e.Stdout, "opening %s in your browser\n", page.URL)
			return e.openBrowser(page)
		},
	}
	cmd.Flags().BoolVar(&open, "open", false, "open the page in your browser")
	cmd.Flags().BoolVar(&rotate, "rotate", false, "replace the token first (browsers must open the page again)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the page's address, token and address with the token as JSON")
	return cmd
}

// openBrowser writes a page that sends the browser on to the web page with
// its token (mode 0600, in the data directory), and opens it with the
// system's opener.
func (e *Env) openBrowser(page apitype.WebPage) error {
	path := filepath.Join(e.Home, webOpenFile)
	u := html.EscapeString(page.OpenURL)
	doc := `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=` + u + `">` +
		`<title>peercollab</title><p><a href="` + u + `">Open peercollab</a></p>` + "\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPathError(err))
	}
	os.Chmod(path, 0o600) // WriteFile keeps the mode of a file that exists
	name, args := opener(path)
	bin, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("cannot open a browser here (no %s); open the address that `peercollab web` prints yourself", name)
	}
	c := exec.Command(bin, args...)
	if err := c.Start(); err != nil {
		return fmt.Errorf("cannot open a browser: %w", err)
	}
	return c.Process.Release()
}

// opener is the command that opens a file in the user's browser.
func opener(path string) (string, []string) {
	switch runtime.GOOS {
	case "darwin":
		return "open", []string{path}
	case "windows":
		return "rundll32", []string{"url.dll,FileProtocolHandler", path}
	default:
		return "xdg-open", []string{path}
	}
}
