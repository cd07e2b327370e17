package session_test

import (
	"context"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsub_pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/protocols/pb"
	psession "github.com/peercollab/peercollab/protocols/session"
)

// FuzzValidator: anything on a session topic, sealed with the session's
// key (plain is the topic message before sealing) or not (then plain is the
// envelope itself), from the host, a member or an outsider. The validator
// accepts only what the session's rules allow: a roster or heartbeat of
// this session from the host; well-formed data of this session, signed by
// a current member and published by it or the host, in an envelope of its
// own epoch; and it hands on only what it accepted.
func FuzzValidator(f *testing.F) {
	hk, host := identity(f)
	mk, member := identity(f)
	_, outsider := identity(f)
	key := psession.NewKey(1)
	r := &roster{host: host, members: map[peer.ID]bool{host: true, member: true}, keys: map[uint32]psession.Key{1: key}}
	v := psession.Validator(sid, r)
	add := func(tm *pb.SessionTopicMessage) {
		b, _ := proto.Marshal(tm)
		for from := range byte(3) {
			f.Add(b, true, from)
		}
	}
	d, _ := psession.Seal(sid, mk.Sign, member, 1, key, []byte("hello"))
	add(&pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Data{Data: d}})
	d, _ = psession.Seal(sid, hk.Sign, host, psession.MaxSeq, key, []byte("last"))
	add(&pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Data{Data: d}})
	add(&pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Roster{Roster: psession.RosterToPB(sid, "chat", host, pb.SessionRoster_RUNNING, 3, 1, []peer.ID{host, member})}})
	add(&pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Heartbeat{Heartbeat: &pb.SessionHeartbeat{SessionId: sid, Version: 3, Highest: map[string]uint64{member.String(): 1 << 63}}}})
	add(&pb.SessionTopicMessage{})
	env, _ := psession.SealTopic(sid, key, &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Data{Data: d}})
	f.Add(env, false, byte(0))
	f.Add([]byte{0x08, 0x02, 0x12, 0x01, 0x00}, false, byte(0))
	f.Fuzz(func(t *testing.T, plain []byte, sealed bool, who byte) {
		from := []peer.ID{host, member, outsider}[int(who)%3]
		data := plain
		if sealed {
			var tm pb.SessionTopicMessage
			if proto.Unmarshal(plain, &tm) != nil {
				return
			}
			var err error
			if data, err = psession.SealTopic(sid, key, &tm); err != nil {
				return
			}
		}
		msg := &pubsub.Message{Message: &pubsub_pb.Message{From: []byte(from), Data: data}}
		res := v(context.Background(), from, msg)
		tm, handed := msg.ValidatorData.(*pb.SessionTopicMessage)
		if res != pubsub.ValidationAccept {
			if handed {
				t.Fatalf("%v, but handed on %v", res, tm)
			}
			return
		}
		if !handed {
			t.Fatal("accepted, but handed nothing on")
		}
		switch m := tm.GetMsg().(type) {
		case *pb.SessionTopicMessage_Roster:
			if from != host || m.Roster.GetSessionId() != sid {
				t.Fatalf("accepted a roster from %s: %v", from, m.Roster)
			}
		case *pb.SessionTopicMessage_Heartbeat:
			if from != host || m.Heartbeat.GetSessionId() != sid {
				t.Fatalf("accepted a heartbeat from %s: %v", from, m.Heartbeat)
			}
		case *pb.SessionTopicMessage_Data:
			sender := peer.ID(m.Data.GetSender())
			if psession.CheckData(sid, m.Data) != nil || psession.Verify(m.Data) != nil || !r.IsMember(sender) ||
				(from != sender && from != host) || m.Data.GetEpoch() != 1 {
				t.Fatalf("accepted data %v from %s", m.Data, from)
			}
		default:
			t.Fatalf("accepted %v", tm)
		}
	})
}
