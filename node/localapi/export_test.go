package localapi

import (
	"net"
	"time"

	"github.com/peercollab/peercollab/node"
)

// ServeWithTimeouts is Serve with shorter connection timeouts, for tests.
func ServeWithTimeouts(n *node.Node, l net.Listener, header, body, idle time.Duration) *Server {
	return serve(n, l, timeouts{header: header, body: body, idle: idle})
}

// Timeouts of the server, for tests that need to outlast them.
const (
	HeaderTimeout = headerTimeout
	BodyTimeout   = bodyTimeout
	MaxBody       = maxBody
	MaxMessage    = maxMessage
)
