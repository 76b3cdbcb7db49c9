package order_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

func TestSendMessage(t *testing.T) {
	o := newOrder(t)
	m, err := o.SendMessage(t0, "m1", order.PartySeller, " free shipping? ", []string{"HTTPS://img.example/a.jpg"})
	if err != nil || m.AuthorID != "store-x" || m.Text != "free shipping?" {
		t.Fatalf("%+v %v", m, err)
	}
	if h := o.History(); h[len(h)-1].Kind != "message_sent" || h[len(h)-1].Note != "m1" || h[len(h)-1].Actor != "seller:store-x" {
		t.Fatalf("event %+v", h[len(h)-1])
	}
	for name, tc := range map[string]struct {
		from  order.Party
		text  string
		links []string
	}{
		"empty":           {order.PartyBuyer, "  ", nil},
		"too long":        {order.PartyBuyer, strings.Repeat("a", order.MaxMessageLength+1), nil},
		"javascript link": {order.PartyBuyer, "x", []string{"javascript:alert(1)"}},
		"no host":         {order.PartyBuyer, "x", []string{"https://"}},
		"platform":        {order.PartyPlatform, "x", nil},
	} {
		if _, err := o.SendMessage(t0, "m2", tc.from, tc.text, tc.links); !errors.Is(err, order.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if n := len(o.NewMessages()); n != 1 {
		t.Fatalf("%d messages to store, want 1", n)
	}
}

// Round two, point 12: one party sends at most MaxMessagesPerDay messages
// on an order in 24 hours (the other party is not held back, and the next
// day counts anew); a dispute holds at most MaxEvidence items.
func TestConversationAndEvidenceAreCapped(t *testing.T) {
	o := newOrder(t)
	for i := range order.MaxMessagesPerDay {
		if _, err := o.SendMessage(t0.Add(time.Duration(i)*time.Minute), fmt.Sprint("m", i), order.PartyBuyer, "hello", nil); err != nil {
			t.Fatal(err)
		}
	}
	late := t0.Add(time.Duration(order.MaxMessagesPerDay) * time.Minute)
	if _, err := o.SendMessage(late, "over", order.PartyBuyer, "hello", nil); !errors.Is(err, order.ErrTooMany) {
		t.Fatalf("message %d in a day: %v, want ErrTooMany", order.MaxMessagesPerDay+1, err)
	}
	if _, err := o.SendMessage(late, "seller", order.PartySeller, "hi", nil); err != nil {
		t.Fatalf("the other party: %v", err)
	}
	if _, err := o.SendMessage(t0.Add(24*time.Hour+time.Minute), "next-day", order.PartyBuyer, "hello", nil); err != nil {
		t.Fatalf("the next day: %v", err)
	}

	pol := order.DefaultPolicy
	d := shippedOrder(t, pol)
	must(t, d.OpenDispute(t0, "damaged", order.Money{Amount: 100, Currency: "USD"}, order.Evidence{Party: order.PartyBuyer, Text: "broken"}, pol))
	for range order.MaxEvidence - 1 {
		must(t, d.AddEvidence(t0, order.Evidence{Party: order.PartySeller, Text: "photo"}))
	}
	if err := d.AddEvidence(t0, order.Evidence{Party: order.PartyBuyer, Text: "one more"}); !errors.Is(err, order.ErrTooMany) {
		t.Fatalf("evidence item %d: %v, want ErrTooMany", order.MaxEvidence+1, err)
	}
}
