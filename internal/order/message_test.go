package order_test

import (
	"errors"
	"strings"
	"testing"

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
