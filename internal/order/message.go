package order

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxMessageLength is how long a message's text may be, in characters.
const MaxMessageLength = 2000

// MaxMessagesPerDay is how many messages one party may send in one order's
// conversation in 24 hours: a conversation is for agreeing on a price or a
// delivery, and an order loads its history with every change.
const MaxMessagesPerDay = 100

// ErrTooMany refuses what exceeds a cap (messages a day, evidence items).
var ErrTooMany = errors.New("too many")

// Message is one message of an order's conversation between its buyer and
// its seller. Messages are not loaded with the order: the order records
// each as an event, and the store keeps and lists them.
type Message struct {
	ID       string
	Author   Party
	AuthorID string
	Text     string
	Links    []string
	SentAt   time.Time
}

// SendMessage adds a message of the buyer's or the seller's to the order's
// conversation, in any status. It returns the message to store.
func (o *Order) SendMessage(now time.Time, id string, from Party, text string, links []string) (Message, error) {
	text = strings.TrimSpace(text)
	switch {
	case from != PartyBuyer && from != PartySeller:
		return Message{}, fmt.Errorf("%w: only the buyer and the seller write in an order's conversation", ErrInvalid)
	case text == "" && len(links) == 0:
		return Message{}, invalid("message.text", "a message needs a text or a link")
	case utf8.RuneCountInString(text) > MaxMessageLength:
		return Message{}, invalid("message.text", "a message is at most %d characters", MaxMessageLength)
	case len(links) > 10:
		return Message{}, invalid("message.links", "a message has at most 10 links")
	}
	actor, sent := string(from)+":"+o.partyID(from), 0
	for _, e := range o.History() {
		if e.Kind == "message_sent" && e.Actor == actor && now.Sub(e.OccurredAt) < 24*time.Hour {
			sent++
		}
	}
	if sent >= MaxMessagesPerDay {
		return Message{}, fmt.Errorf("%w: %d messages in 24 hours is the most one party may send on an order; write again later", ErrTooMany, MaxMessagesPerDay)
	}
	for i, l := range links {
		if u, err := url.Parse(l); err != nil || (!strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) || u.Host == "" {
			return Message{}, invalid(fmt.Sprintf("message.links[%d]", i), "link %q is not an http or https URL with a host", l)
		}
	}
	m := Message{ID: id, Author: from, AuthorID: o.partyID(from), Text: text, Links: append([]string(nil), links...), SentAt: now}
	o.newMessages = append(o.newMessages, m)
	o.record(now, "message_sent", string(from)+":"+m.AuthorID, m.ID, nil)
	o.detail(Detail{MessageID: m.ID, Text: m.Text, Links: m.Links})
	return m, nil
}

// NewMessages returns the messages sent since the order was loaded; the
// store keeps them.
func (o *Order) NewMessages() []Message { return append([]Message(nil), o.newMessages...) }
