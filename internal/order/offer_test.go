package order_test

import (
	"errors"
	"testing"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

func usdM(n int64) order.Money { return order.Money{Amount: n, Currency: "USD"} }

func TestOffers(t *testing.T) {
	pol := order.DefaultPolicy
	t.Run("a lower total, accepted, becomes the discount", func(t *testing.T) {
		o := newOrder(t) // items 2300 + shipping 500 = 2800
		must(t, o.MakeOffer(t0, order.OfferTotal, usdM(2500), "bought two", pol))
		if err := o.MakeOffer(t0, order.OfferShippingFee, usdM(0), "", pol); !errors.Is(err, order.ErrIllegalTransition) {
			t.Fatalf("a second open offer: %v", err)
		}
		if due := o.Deadlines()[order.DeadlineOffer]; !due.Equal(t0.Add(pol.OfferTTL)) {
			t.Fatalf("offer deadline %v", due)
		}
		must(t, o.AnswerOffer(t0.Add(time.Hour), true, "ok"))
		if o.Total().Amount != 2500 || o.Discount() != 300 || o.Offer().Status != order.OfferAccepted {
			t.Fatalf("total %d, discount %d, offer %s", o.Total().Amount, o.Discount(), o.Offer().Status)
		}
		h := o.History()
		adj := h[len(h)-1].Adjustment
		if h[len(h)-1].Kind != "price_adjusted" || adj.OldTotal != 2800 || adj.NewTotal != 2500 || adj.Reason != "offer accepted" || adj.ProposedBy != "buyer:alice" {
			t.Fatalf("last event %+v, adjustment %+v", h[len(h)-1], adj)
		}
		if _, ok := o.Deadlines()[order.DeadlineOffer]; ok {
			t.Fatal("the offer's deadline is still open")
		}
		// The seller cannot reprice below the discount it granted.
		if err := o.AdjustPrice(t0, order.PriceChange{UnitPrices: map[string]order.Money{"p1": usdM(0), "p2": usdM(0)}, ShippingFee: &order.Money{Currency: "USD"}, Reason: "x"}); !errors.Is(err, order.ErrInvalid) {
			t.Fatalf("pricing below the discount: %v", err)
		}
	})
	t.Run("a lower shipping fee, declined with a note", func(t *testing.T) {
		o := newOrder(t)
		if err := o.MakeOffer(t0, order.OfferShippingFee, usdM(500), "", pol); !errors.Is(err, order.ErrInvalid) {
			t.Fatalf("the same fee: %v", err)
		}
		must(t, o.MakeOffer(t0, order.OfferShippingFee, usdM(0), "free shipping?", pol))
		if err := o.AnswerOffer(t0, false, ""); !errors.Is(err, order.ErrInvalid) {
			t.Fatalf("declining without a note: %v", err)
		}
		must(t, o.AnswerOffer(t0, false, "sorry, heavy parcel"))
		if o.Total().Amount != 2800 || o.Offer().Status != order.OfferDeclined {
			t.Fatalf("after declining: %d, %s", o.Total().Amount, o.Offer().Status)
		}
		must(t, o.MakeOffer(t0, order.OfferShippingFee, usdM(200), "half?", pol))
		must(t, o.AnswerOffer(t0, true, ""))
		if o.ShippingFee() != 200 || o.Total().Amount != 2500 {
			t.Fatalf("shipping %d, total %d", o.ShippingFee(), o.Total().Amount)
		}
	})
	t.Run("lapses with the payment window if that is sooner", func(t *testing.T) {
		o := newOrder(t)
		late := t0.Add(20*24*time.Hour - time.Hour)
		must(t, o.MakeOffer(late, order.OfferTotal, usdM(2000), "", pol))
		if due := o.Deadlines()[order.DeadlineOffer]; !due.Equal(t0.Add(20 * 24 * time.Hour)) {
			t.Fatalf("offer deadline %v, want the payment window's end", due)
		}
		must(t, o.FireDeadline(t0.Add(20*24*time.Hour), order.DeadlineOffer, pol))
		if o.Offer().Status != order.OfferLapsed || o.Total().Amount != 2800 {
			t.Fatalf("offer %s, total %d", o.Offer().Status, o.Total().Amount)
		}
	})
	t.Run("refused while a payment is open, lapses once paid", func(t *testing.T) {
		o := newOrder(t)
		must(t, o.MakeOffer(t0, order.OfferTotal, usdM(2000), "", pol))
		must(t, o.BeginPayment(t0, o.Total(), attempt("k1")))
		if err := o.AnswerOffer(t0, true, ""); !errors.Is(err, order.ErrPaymentInProgress) {
			t.Fatalf("accepting during a payment: %v", err)
		}
		must(t, o.ApplyResult(t0, "a-k1", order.Result{Kind: order.ResultSucceeded, ProviderRef: "p", Captured: true}, pol))
		if o.Offer().Status != order.OfferLapsed {
			t.Fatalf("offer %s after payment", o.Offer().Status)
		}
		if err := o.AnswerOffer(t0, true, ""); !errors.Is(err, order.ErrIllegalTransition) {
			t.Fatalf("accepting after payment: %v", err)
		}
		if a, _ := o.Attempt("a-k1"); a.Amount.Amount != 2800 {
			t.Fatalf("charged %d, want the 2800 the buyer confirmed", a.Amount.Amount)
		}
	})
}
