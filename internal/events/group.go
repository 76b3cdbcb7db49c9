package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// WatchGroup sends the events of the stream to consumer as a member of
// group, made on first use starting after place start (-1: from now on, 0:
// the oldest event kept). It first sends again what consumer took and did
// not acknowledge, then what another consumer of the group left
// unacknowledged for Config.ClaimAfter, then new events. Events f leaves
// out are acknowledged at once.
func (h *Hub) WatchGroup(ctx context.Context, f Filter, group, consumer string, start int64, send func(Item) error) error {
	done, err := h.admit(ctx, f)
	if err != nil {
		return err
	}
	defer done()
	return h.ended(h.watchGroup(ctx, f, group, consumer, start, send))
}

func (h *Hub) watchGroup(ctx context.Context, f Filter, group, consumer string, start int64, send func(Item) error) error {
	from := "$"
	if start >= 0 {
		from = entryID(start)
		if start == 0 {
			from = "0"
		}
	}
	if err := h.makeGroup(ctx, group, from); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWriter(ctx, h.cfg, send)
	g := groupWatch{h: h, f: f, group: group, consumer: consumer, w: w}
	if err := w.put(Item{}); err != nil {
		return err
	}
	// What this consumer took before and did not acknowledge.
	for after := "0"; ; {
		res, err := h.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer,
			Streams: []string{h.cfg.Stream, after}, Count: 100}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return status.Errorf(codes.Unavailable, "read the event feed: %v", err)
		}
		if len(res) == 0 || len(res[0].Messages) == 0 {
			break
		}
		if err := g.deliver(ctx, res[0].Messages); err != nil {
			return err
		}
		after = res[0].Messages[len(res[0].Messages)-1].ID
	}
	var claimed time.Time
	beat := time.Now()
	for {
		if time.Since(claimed) >= h.cfg.ClaimAfter/2 {
			claimed = time.Now()
			msgs, _, err := h.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: h.cfg.Stream, Group: group, Consumer: consumer,
				MinIdle: h.cfg.ClaimAfter, Start: "0-0", Count: 100}).Result()
			if err != nil && ctx.Err() == nil {
				return status.Errorf(codes.Unavailable, "claim events: %v", err)
			}
			if err := g.deliver(ctx, msgs); err != nil {
				return err
			}
		}
		res, err := h.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer,
			Streams: []string{h.cfg.Stream, ">"}, Count: 100, Block: min(h.cfg.Heartbeat, 2*time.Second)}).Result()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, redis.Nil):
		case err != nil:
			return status.Errorf(codes.Unavailable, "read the event feed: %v", err)
		case len(res) > 0 && len(res[0].Messages) > 0:
			if err := g.deliver(ctx, res[0].Messages); err != nil {
				return err
			}
			beat = time.Now()
		}
		select {
		case err := <-w.errc:
			return err
		default:
		}
		if time.Since(beat) >= h.cfg.Heartbeat {
			if err := w.put(Item{Cursor: g.last}); err != nil {
				return err
			}
			beat = time.Now()
		}
	}
}

// GroupPositions keeps each consumer group's position (the place up to
// which it acknowledged every event) outside Redis, so that a group Redis
// lost is made again where it was (PostgreSQL's, in Souk).
type GroupPositions interface {
	GroupPosition(ctx context.Context, group string) (pos int64, known bool, err error)
	SaveGroupPosition(ctx context.Context, group string, pos int64) error
}

// SetGroupPositions makes the Hub keep its groups' positions in p.
func (h *Hub) SetGroupPositions(p GroupPositions) { h.positions = p }

// makeGroup makes group, unless it exists, starting after from. A group
// made anew that the positions know is one Redis lost: it starts after its
// last acknowledged place instead, and the events the relay published again
// since then are delivered again (at least once).
func (h *Hub) makeGroup(ctx context.Context, group, from string) error {
	err := h.rdb.XGroupCreateMkStream(ctx, h.cfg.Stream, group, from).Err()
	switch {
	case err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP"):
		return nil
	case err != nil:
		return status.Errorf(codes.Unavailable, "make consumer group: %v", err)
	case h.positions == nil:
		return nil
	}
	pos, known, err := h.positions.GroupPosition(ctx, group)
	if err != nil {
		return status.Errorf(codes.Unavailable, "read the group's position: %v", err)
	}
	if !known {
		// A new group: its position is where it starts.
		start, serr := h.groupPosition(ctx, group)
		if serr == nil {
			serr = h.positions.SaveGroupPosition(ctx, group, start)
		}
		if serr != nil {
			return status.Errorf(codes.Unavailable, "save the group's position: %v", serr)
		}
		return nil
	}
	h.log.WarnContext(ctx, "event feed: a consumer group Redis lost is made again from its last acknowledged place", "group", group, "after", pos)
	if err := h.rdb.XGroupSetID(ctx, h.cfg.Stream, group, entryIDOrStart(pos)).Err(); err != nil {
		return status.Errorf(codes.Unavailable, "place the consumer group: %v", err)
	}
	return nil
}

func entryIDOrStart(pos int64) string {
	if pos <= 0 {
		return "0"
	}
	return entryID(pos)
}

// groupPosition returns the place up to which group acknowledged every
// event: before its oldest pending event, or its last delivered one.
func (h *Hub) groupPosition(ctx context.Context, group string) (int64, error) {
	pending, err := h.rdb.XPending(ctx, h.cfg.Stream, group).Result()
	if err != nil {
		return 0, err
	}
	if pending.Count > 0 {
		seq, _, _ := strings.Cut(pending.Lower, "-")
		n, err := strconv.ParseInt(seq, 10, 64)
		return n - 1, err
	}
	groups, err := h.rdb.XInfoGroups(ctx, h.cfg.Stream).Result()
	if err != nil {
		return 0, err
	}
	for _, g := range groups {
		if g.Name == group {
			seq, _, _ := strings.Cut(g.LastDeliveredID, "-")
			n, err := strconv.ParseInt(seq, 10, 64)
			return n, err
		}
	}
	return 0, fmt.Errorf("no consumer group %s", group)
}

// saveGroupPosition records how far group acknowledged every event. A
// position not saved only lags: the group would get more again after a
// loss, never less, so the acknowledgement stands.
func (h *Hub) saveGroupPosition(ctx context.Context, group string) {
	if h.positions == nil {
		return
	}
	pos, err := h.groupPosition(ctx, group)
	if err == nil {
		err = h.positions.SaveGroupPosition(ctx, group, pos)
	}
	if err != nil && ctx.Err() == nil {
		h.log.WarnContext(ctx, "event feed: save a consumer group's position", "group", group, "err", err)
	}
}

type groupWatch struct {
	h               *Hub
	f               Filter
	group, consumer string
	w               *writer
	last            int64
}

// deliver sends msgs, acknowledging at once those the filter leaves out
// and those no longer in the stream (trimmed while pending).
func (g *groupWatch) deliver(ctx context.Context, msgs []redis.XMessage) error {
	var skip []string
	for _, m := range msgs {
		e, err := Parse(m)
		if err != nil || !g.f.match(e) {
			if err != nil && len(m.Values) > 0 {
				g.h.log.ErrorContext(ctx, "event feed: skip an entry", "err", err)
			}
			skip = append(skip, m.ID)
			continue
		}
		if err := g.w.put(Item{Event: e}); err != nil {
			return err
		}
		g.last = max(g.last, e.Cursor)
	}
	if len(skip) > 0 {
		if err := g.h.rdb.XAck(ctx, g.h.cfg.Stream, g.group, skip...).Err(); err != nil {
			return status.Errorf(codes.Unavailable, "acknowledge events: %v", err)
		}
		g.h.saveGroupPosition(ctx, g.group)
	}
	return nil
}

// Ack acknowledges events group's consumer handled, by cursor, and returns
// how many were pending.
func (h *Hub) Ack(ctx context.Context, group string, cursors []int64) (int64, error) {
	ids := make([]string, len(cursors))
	for i, c := range cursors {
		ids[i] = entryID(c)
	}
	n, err := h.rdb.XAck(ctx, h.cfg.Stream, group, ids...).Result()
	if err != nil {
		return 0, status.Errorf(codes.Unavailable, "acknowledge events: %v", err)
	}
	h.saveGroupPosition(ctx, group)
	return n, nil
}
