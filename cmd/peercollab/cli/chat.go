package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/client"
)

// chatCmd is a small application built on the public local API only: the
// example to copy. Register it so that an accepted invitation opens it:
//
//	peercollab apps register chat --desc "Terminal chat" --launch "xterm -e peercollab chat"
func (e *Env) chatCmd() *cobra.Command {
	var history bool
	cmd := &cobra.Command{
		Use:   "chat [SID]",
		Short: "Chat in a session: lines you type are sent, the members' are printed",
		Long: `A terminal chat over a session, written against the local API only (see
cmd/peercollab/cli/chat.go). Lines from standard input are sent to the
session; every member's messages are printed as they arrive. SID defaults to
the session of the invitation that launched the program ($` + apitype.EnvSession + `).
Ends at the end of input or when the session ends.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sid := os.Getenv(apitype.EnvSession)
			if len(args) == 1 {
				sid = args[0]
			}
			if sid == "" {
				return errors.New("name the session: peercollab chat SID")
			}
			return e.chat(cmd.Context(), cmd.InOrStdin(), sid, history)
		},
	}
	cmd.Flags().BoolVar(&history, "history", true, "print the messages delivered before the chat opened")
	return cmd
}

func (e *Env) chat(ctx context.Context, in io.Reader, sid string, history bool) error {
	c := e.client()
	v, err := c.Session(ctx, sid)
	if err != nil {
		return err
	}
	sid = v.ID
	names := e.peerNames(ctx)
	stream, err := c.Events(ctx)
	if err != nil {
		return err
	}
	defer stream.Close()
	defer context.AfterFunc(ctx, func() { stream.Close() })()
	fmt.Fprintf(e.Stderr, "chat in session %s (%s), %d members; type and press Enter\n", sid[:12], v.AppID, len(v.Members))

	var mu sync.Mutex // one writer of stdout at a time
	print := func(m apitype.Message) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(e.Stdout, "%s %s: %s\n", m.Time.Local().Format("15:04:05"), names(m.Sender), strings.TrimRight(string(m.Data), "\n"))
	}
	var last uint64
	if history {
		ms, err := c.SessionMessages(ctx, sid, 0)
		if err != nil {
			return err
		}
		for _, m := range ms {
			print(m)
			last = m.Index
		}
	}
	done := make(chan error, 1)
	go func() {
		for {
			ev, err := stream.Next(ctx)
			if err != nil {
				done <- nil
				return
			}
			switch ev.Type {
			case apitype.EventMessage:
				var m apitype.Message
				if json.Unmarshal(ev.Data, &m) == nil && m.Session == sid && m.Index > last {
					print(m)
				}
			case apitype.EventSession:
				var sv apitype.Session
				if json.Unmarshal(ev.Data, &sv) == nil && sv.ID == sid && (sv.State == apitype.SessionEnded || sv.Me == apitype.StandingRemoved) {
					done <- fmt.Errorf("the session is over (%s)", map[bool]string{true: "ended", false: "removed"}[sv.State == apitype.SessionEnded])
					return
				}
			}
		}
	}()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for {
		select {
		case err := <-done:
			return err
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			if _, err := c.SessionSend(ctx, sid, []byte(line)); err != nil {
				fmt.Fprintln(e.Stderr, client.Sentence(err))
			}
		}
	}
}

// peerNames returns a function naming a peer by its contact nickname or
// its name near, else a short peer ID.
func (e *Env) peerNames(ctx context.Context) func(peer.ID) string {
	c := e.client()
	known := map[peer.ID]string{}
	if me, err := c.ID(ctx); err == nil {
		known[me.PeerID] = "me"
	}
	if cs, err := c.Contacts(ctx); err == nil {
		for _, ct := range cs {
			known[ct.PeerID] = ct.Nickname
		}
	}
	if people, err := c.Near(ctx); err == nil {
		for _, p := range people {
			if _, ok := known[p.PeerID]; !ok {
				known[p.PeerID] = p.DisplayName
				if n, ok := known[p.PersonID]; ok && p.Device != "" { // a contact's device
					known[p.PeerID] = n + "/" + p.Device
				}
			}
		}
	}
	return func(p peer.ID) string {
		if n, ok := known[p]; ok {
			return n
		}
		s := p.String()
		return "…" + s[max(0, len(s)-6):]
	}
}
