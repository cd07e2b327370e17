package client

import (
	"context"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// WebPage says where the daemon serves its web page and the token that
// opens it; Enabled is false when it serves none.
func (c *Client) WebPage(ctx context.Context) (apitype.WebPage, error) {
	var v apitype.WebPage
	return v, c.do(ctx, "GET", "/v1/web", nil, &v)
}

// RotateWebToken replaces the web page's token: browsers that opened the
// page with the old one must open it again. It is an error with code
// apitype.CodeNoWebPage when the daemon serves no page.
func (c *Client) RotateWebToken(ctx context.Context) (apitype.WebPage, error) {
	var v apitype.WebPage
	return v, c.do(ctx, "POST", "/v1/web/token", nil, &v)
}
