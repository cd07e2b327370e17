package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// completeArgs completes a command's argument from the running daemon, by
// the name its Use gives the argument: PEER (contacts and people near),
// SID (sessions), ID (invitations, or host requests under host-requests),
// APPID and OBJID (this node's applications and objects).
func (e *Env) completeArgs(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	kind := argKind(cmd.Use, len(args))
	if kind == "" {
		return nil, cobra.ShellCompDirectiveDefault
	}
	if cmd.Name() == "accept" || cmd.Name() == "decline" {
		if p := cmd.Parent(); p != nil && p.Name() == "host-requests" {
			kind = "HOSTREQ"
		}
	}
	return e.complete(cmd, kind), cobra.ShellCompDirectiveNoFileComp
}

// complete lists the daemon's values of an argument kind.
func (e *Env) complete(cmd *cobra.Command, kind string) []cobra.Completion {
	if e.resolveHome() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := e.client()
	var out []cobra.Completion
	switch kind {
	case "PEER":
		if cs, err := c.Contacts(ctx); err == nil {
			for _, ct := range cs {
				out = append(out, cobra.CompletionWithDesc(ct.Nickname, ct.DisplayName+" (contact)"))
			}
		}
		if people, err := c.Near(ctx); err == nil {
			for _, p := range people {
				if !p.Contact {
					out = append(out, cobra.CompletionWithDesc(p.PeerID.String(), p.DisplayName+" (near)"))
				}
			}
		}
	case "SID":
		if vs, err := c.Sessions(ctx); err == nil {
			for _, v := range vs {
				out = append(out, cobra.CompletionWithDesc(v.ID, v.AppID+", "+string(v.State)))
			}
		}
	case "ID":
		if list, err := c.Invitations(ctx, "", "", "", cmd.Name() != "show"); err == nil {
			for _, inv := range list.Invitations {
				out = append(out, cobra.CompletionWithDesc(inv.ID, string(inv.Direction)+" "+inv.PeerName+", "+inv.AppID))
			}
		}
	case "HOSTREQ":
		if rs, err := c.HostRequests(ctx); err == nil {
			for _, r := range rs {
				out = append(out, cobra.CompletionWithDesc(r.ID, r.AppID+", "+r.State))
			}
		}
	case "APPID", "OBJID":
		if me, err := c.MyEndpoint(ctx); err == nil {
			if kind == "APPID" {
				for _, a := range me.Applications {
					out = append(out, cobra.CompletionWithDesc(a.ID, a.Description))
				}
			} else {
				for _, o := range me.Objects {
					out = append(out, o.ID)
				}
			}
		}
	}
	return out
}

// argKind is the name a command's Use gives its argument number i
// (PEER, SID, ...), skipping flags and their values; "" for none.
func argKind(use string, i int) string {
	var names []string
	words := strings.Fields(use)
	for j := 1; j < len(words); j++ {
		w := words[j]
		switch {
		case strings.HasPrefix(w, "[-"):
			for !strings.HasSuffix(words[j], "]") && j+1 < len(words) {
				j++
			}
		case strings.HasPrefix(w, "-"):
			j++ // the flag's value
		case w == "|":
		default:
			names = append(names, w)
		}
	}
	if len(names) == 0 {
		return ""
	}
	var w string
	if i < len(names) {
		w = names[i]
	} else if last := names[len(names)-1]; strings.Contains(last, "...") {
		w = last
	} else {
		return ""
	}
	for _, alt := range strings.Split(strings.Trim(w, "[]."), "|") {
		switch alt = strings.Trim(alt, "[]."); alt {
		case "PEER", "SID", "ID", "APPID", "OBJID":
			return alt
		}
	}
	return ""
}
