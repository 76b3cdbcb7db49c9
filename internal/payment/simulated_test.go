package payment_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payment"
)

func TestSimulatedTestCards(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC) }
	amount := order.Money{Amount: 1000, Currency: "USD"}
	for _, tc := range payment.TestCards {
		t.Run(tc.Outcome+"/"+tc.Number, func(t *testing.T) {
			sim := payment.NewSimulated(now)
			req := payment.ChargeRequest{IdempotencyKey: "k", Amount: amount, Card: payment.Card{Number: tc.Number, ExpMonth: 12, ExpYear: 2030, CVC: "123"}}
			out, err := sim.Charge(context.Background(), req)
			switch tc.Outcome {
			case "processing_error":
				if !errors.Is(err, payment.ErrTransient) {
					t.Fatalf("err = %v, want ErrTransient", err)
				}
				return
			case "approve":
				if err != nil || !out.Approved || len(sim.Charges()) != 1 {
					t.Fatalf("%+v %v, %d charges", out, err, len(sim.Charges()))
				}
			default:
				if err != nil || out.Approved || out.Decline.Code != tc.Outcome || out.Decline.Message == "" || len(sim.Charges()) != 0 {
					t.Fatalf("%+v %v", out, err)
				}
			}
			again, err := sim.Charge(context.Background(), req)
			if err != nil || again != out || len(sim.Charges()) > 1 {
				t.Fatalf("retry with the same key: %+v %v, %d charges", again, err, len(sim.Charges()))
			}
		})
	}
}

func TestSimulatedExpiredApprovingCard(t *testing.T) {
	sim := payment.NewSimulated(func() time.Time { return time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC) })
	out, err := sim.Charge(context.Background(), payment.ChargeRequest{IdempotencyKey: "k", Amount: order.Money{Amount: 1, Currency: "USD"},
		Card: payment.Card{Number: "4242424242424242", ExpMonth: 10, ExpYear: 2026, CVC: "123"}})
	if err != nil || out.Approved || out.Decline.Code != "expired_card" {
		t.Fatalf("%+v %v", out, err)
	}
}

func TestCardNeverPrintsItsNumber(t *testing.T) {
	c := payment.Card{Number: "4000000000009995", CVC: "987", ExpMonth: 1, ExpYear: 2030}
	for _, s := range []string{c.String(), c.LogValue().String()} {
		if s != "visa ending 9995" {
			t.Fatalf("card prints as %q", s)
		}
	}
	for number, brand := range map[string]string{"5555555555554444": "mastercard", "2200000000000004": "mir", "2221000000000009": "mastercard", "378282246310005": "amex", "6200000000000005": "unionpay"} {
		if got := payment.Brand(number); got != brand {
			t.Errorf("Brand(%s) = %s, want %s", number, got, brand)
		}
	}
}
