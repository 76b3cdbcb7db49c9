package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/app"
	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestOffers: the buyer offers a lower total or shipping fee; the seller
// accepts (the total the buyer pays changes, and the adjustment names both
// sides), declines with a note (JSON), or lets it lapse.
func TestOffers(t *testing.T) {
	s := startSystem(t, 1, func(c *app.Config) {
		c.Policy.OfferTTL = 700 * time.Millisecond
		c.SweepInterval = 100 * time.Millisecond
	})
	lamp := s.product("store-x", "Lamp", 1000, 300, 100)
	buyerCtx, sellerTok := as(s.token(auth.RoleBuyer, "alice")), s.token(auth.RoleSeller, "store-x")
	offer := func(o *orderv1.Order, kind orderv1.OfferKind, amount int64) *orderv1.Order {
		t.Helper()
		r, err := s.buyer.MakeOffer(buyerCtx, &buyerv1.MakeOfferRequest{OrderId: o.Id, Kind: kind, Amount: usd(amount), Note: "please"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Order.Offer.Status != "OPEN" || deadline(r.Order, "offer").IsZero() {
			t.Fatalf("offer %+v, deadlines %v", r.Order.Offer, r.Order.Deadlines)
		}
		return r.Order
	}

	t.Run("accepted total", func(t *testing.T) {
		o := s.checkout("alice", 2, lamp)[0] // 2000 + 300
		offer(o, orderv1.OfferKind_OFFER_KIND_TOTAL, 2000)
		_, err := s.buyer.MakeOffer(buyerCtx, &buyerv1.MakeOfferRequest{OrderId: o.Id, Kind: orderv1.OfferKind_OFFER_KIND_SHIPPING_FEE, Amount: usd(0)})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("a second open offer: %v", err)
		}
		r, err := s.seller.AnswerOffer(as(sellerTok), &sellerv1.AnswerOfferRequest{OrderId: o.Id, Accept: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Order.Total.AmountMinor != 2000 || r.Order.Discount.GetAmountMinor() != 300 || r.Order.Offer.Status != "ACCEPTED" {
			t.Fatalf("after accepting: total %d, discount %v, offer %s", r.Order.Total.AmountMinor, r.Order.Discount, r.Order.Offer.Status)
		}
		var adj *orderv1.PriceAdjustment
		for _, h := range r.Order.History {
			if h.Kind == "price_adjusted" {
				adj = h.PriceAdjustment
			}
		}
		if adj == nil || adj.Reason != "offer accepted" || adj.ProposedBy != "buyer:alice" || adj.OldTotal.AmountMinor != 2300 || adj.NewTotal.AmountMinor != 2000 {
			t.Fatalf("adjustment %+v", adj)
		}
		// The old total no longer pays; the new one does.
		if _, err := s.buyer.PayOrder(buyerCtx, payCard(o, "4242424242424242", "offer-pay-old")); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("paying the old total: %v", err)
		}
		paid := s.pay(t, "alice", r.Order, "4242424242424242", "offer-pay-new")
		if paid.Attempt.Amount.AmountMinor != 2000 {
			t.Fatalf("charged %d, want 2000", paid.Attempt.Amount.AmountMinor)
		}
	})
	t.Run("declined shipping fee (JSON)", func(t *testing.T) {
		o := s.checkout("alice", 1, lamp)[0]
		offer(o, orderv1.OfferKind_OFFER_KIND_SHIPPING_FEE, 0)
		code, body := jsonCall(t, "POST", s.sellerURL("/v1/orders/"+o.Id+"/offer:answer"), sellerTok, map[string]any{"accept": false})
		if code != http.StatusBadRequest {
			t.Fatalf("declining without a note: %d %v", code, body)
		}
		code, body = jsonCall(t, "POST", s.sellerURL("/v1/orders/"+o.Id+"/offer:answer"), sellerTok, map[string]any{"accept": false, "note": "heavy parcel"})
		if code != http.StatusOK || str(body, "order", "offer", "status") != "DECLINED" || str(body, "order", "total", "amount_minor") != "1300" {
			t.Fatalf("declining: %d %v", code, body)
		}
	})
	t.Run("lapses", func(t *testing.T) {
		o := s.checkout("alice", 1, lamp)[0]
		offer(o, orderv1.OfferKind_OFFER_KIND_TOTAL, 1000)
		testenv.Eventually(t, 5*time.Second, "the offer lapses", func() bool { return s.order("alice", o.Id).Offer.Status == "LAPSED" })
		got := s.order("alice", o.Id)
		if got.Total.AmountMinor != 1300 || !deadline(got, "offer").IsZero() || countKinds(got)["offer_lapsed"] != 1 {
			t.Fatalf("after lapsing: total %d, deadlines %v, history %v", got.Total.AmountMinor, got.Deadlines, countKinds(got))
		}
		if _, err := s.seller.AnswerOffer(as(sellerTok), &sellerv1.AnswerOfferRequest{OrderId: o.Id, Accept: true}); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("accepting a lapsed offer: %v", err)
		}
	})
}

// TestOfferAcceptRacesPayment accepts an offer while the buyer pays the
// current total, 200 times: either the payment or the acceptance wins,
// never both, and nobody is charged an amount they did not confirm.
func TestOfferAcceptRacesPayment(t *testing.T) {
	s := startSystem(t, 1, nil)
	lamp := s.product("store-x", "Lamp", 1000, 250, 100000)
	buyerCtx, sellerCtx := as(s.token(auth.RoleBuyer, "alice")), as(s.token(auth.RoleSeller, "store-x"))
	const rounds = 200
	paid, accepted := 0, 0
	for round := range rounds {
		o := s.checkout("alice", 1, lamp)[0]
		if _, err := s.buyer.MakeOffer(buyerCtx, &buyerv1.MakeOfferRequest{OrderId: o.Id, Kind: orderv1.OfferKind_OFFER_KIND_TOTAL, Amount: usd(1000)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var payErr, accErr error
		var payResp *buyerv1.PayOrderResponse
		wg.Add(2)
		go func() {
			defer wg.Done()
			payResp, payErr = s.buyer.PayOrder(buyerCtx, payCard(o, "4242424242424242", fmt.Sprintf("offer-race-%d", round)))
		}()
		go func() {
			defer wg.Done()
			_, accErr = s.seller.AnswerOffer(sellerCtx, &sellerv1.AnswerOfferRequest{OrderId: o.Id, Accept: true})
		}()
		wg.Wait()
		for _, err := range []error{payErr, accErr} {
			if c := status.Code(err); err != nil && c != codes.FailedPrecondition && c != codes.Aborted {
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
		}
		final := s.order("alice", o.Id)
		payOK := payErr == nil && payResp.Attempt.Status == aSucceeded
		switch {
		case payOK && accErr == nil:
			t.Fatalf("round %d: both the payment and the acceptance went through", round)
		case payOK:
			paid++
			if final.Status != paidStatus || final.Total.AmountMinor != 1250 || final.Offer.Status != "LAPSED" {
				t.Fatalf("round %d: paid order %s, total %d, offer %s", round, final.Status, final.Total.AmountMinor, final.Offer.Status)
			}
		case accErr == nil:
			accepted++
			if final.Status != pending || final.Total.AmountMinor != 1000 || final.Offer.Status != "ACCEPTED" {
				t.Fatalf("round %d: accepted order %s, total %d, offer %s", round, final.Status, final.Total.AmountMinor, final.Offer.Status)
			}
		default:
			t.Fatalf("round %d: neither went through: pay %v, accept %v", round, payErr, accErr)
		}
	}
	ledger, err := s.provider.Ledger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	charged := 0
	for _, c := range ledger {
		if c.Status != "captured" {
			continue
		}
		charged++
		if got := s.order("alice", c.OrderID); c.Amount != 1250 || got.Total.AmountMinor != 1250 {
			t.Fatalf("order %s charged %d, its total is %d", c.OrderID, c.Amount, got.Total.AmountMinor)
		}
	}
	if charged != paid {
		t.Fatalf("%d charges for %d paid orders", charged, paid)
	}
	t.Logf("%d rounds: %d paid first, %d accepted first", rounds, paid, accepted)
}
