// Package protoconv translates between the domain types and their protobuf
// messages, for the handlers of both services.
package protoconv

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/catalog"
	"github.com/souk-dev/souk/internal/events"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
)

var statusToProto = map[order.Status]orderv1.OrderStatus{
	order.StatusPendingPayment:    orderv1.OrderStatus_ORDER_STATUS_PENDING_PAYMENT,
	order.StatusPaymentProcessing: orderv1.OrderStatus_ORDER_STATUS_PAYMENT_PROCESSING,
	order.StatusPartiallyPaid:     orderv1.OrderStatus_ORDER_STATUS_PARTIALLY_PAID,
	order.StatusAwaitingShipment:  orderv1.OrderStatus_ORDER_STATUS_AWAITING_SHIPMENT,
	order.StatusShipped:           orderv1.OrderStatus_ORDER_STATUS_SHIPPED,
	order.StatusDisputed:          orderv1.OrderStatus_ORDER_STATUS_DISPUTED,
	order.StatusCompleted:         orderv1.OrderStatus_ORDER_STATUS_COMPLETED,
	order.StatusCancelled:         orderv1.OrderStatus_ORDER_STATUS_CANCELLED,
}

// StatusOf translates a domain status.
func StatusOf(s order.Status) orderv1.OrderStatus { return statusToProto[s] }

// Status translates a proto status filter; UNSPECIFIED means any ("").
func Status(s orderv1.OrderStatus) order.Status {
	for k, v := range statusToProto {
		if v == s {
			return k
		}
	}
	return ""
}

// Money translates a domain amount.
func Money(amount int64, currency string) *orderv1.Money {
	return &orderv1.Money{AmountMinor: amount, Currency: currency}
}

// FromMoney translates a proto amount (validated by protovalidate).
func FromMoney(m *orderv1.Money) order.Money {
	return order.Money{Amount: m.GetAmountMinor(), Currency: m.GetCurrency()}
}

// Time translates a time; the zero time becomes nil.
func Time(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// FromTime translates an optional timestamp; nil becomes the zero time.
func FromTime(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// Order translates an order; full adds its history and payment attempts.
func Order(o *order.Order, full bool) *orderv1.Order {
	cur := o.Currency()
	p := &orderv1.Order{
		Id: o.ID(), CheckoutId: o.CheckoutID(), BuyerId: o.BuyerID(), SellerId: o.SellerID(),
		Status: statusToProto[o.Status()], ShippingFee: Money(o.ShippingFee(), cur),
		ItemsTotal: Money(o.ItemsTotal(), cur), Total: Money(o.Total().Amount, cur), Version: o.Version(),
		CreatedAt: Time(o.CreatedAt()), UpdatedAt: Time(o.UpdatedAt()), CancelReason: o.CancelReason(),
		LastDecline: Decline(o.LastDecline()), ProtectionDays: int32(o.ProtectionDays()),
	}
	for _, r := range o.Refunds() {
		p.Refunds = append(p.Refunds, Refund(o.ID(), r))
	}
	if d := o.Discount(); d > 0 {
		p.Discount = Money(d, cur)
	}
	if f := o.Offer(); f != nil {
		p.Offer = &orderv1.Offer{Kind: offerKinds[f.Kind], Amount: Money(f.AmountMinor, f.Currency), Note: f.Note, Status: string(f.Status),
			MadeAt: Time(f.MadeAt), AnsweredAt: Time(f.AnsweredAt), Answer: f.Answer}
	}
	p.CancelledBy = string(o.CancelledBy())
	if c := o.Cancellation(); c != nil {
		p.CancellationRequest = &orderv1.CancellationRequest{
			Reason: c.Reason, Note: c.Note, AttributedTo: string(c.AttributeTo), Status: string(c.Status),
			RequestedAt: Time(c.RequestedAt), AnsweredAt: Time(c.AnsweredAt), Answer: c.Answer,
		}
	}
	if d := o.Dispute(); d != nil {
		p.Dispute = &orderv1.Dispute{
			Reason: d.Reason, RequestedAmount: Money(d.RequestedAmount.Amount, d.RequestedAmount.Currency), Status: string(d.Status),
			Resolution: d.Resolution, OpenedAt: Time(d.OpenedAt), ResolvedAt: Time(d.ResolvedAt),
		}
		if d.CounterAmount.Currency != "" {
			p.Dispute.CounterAmount = Money(d.CounterAmount.Amount, d.CounterAmount.Currency)
		}
		if d.RefundAmount.Currency != "" {
			p.Dispute.RefundAmount = Money(d.RefundAmount.Amount, d.RefundAmount.Currency)
		}
		for _, ev := range d.Evidence {
			p.Dispute.Evidence = append(p.Dispute.Evidence, &orderv1.Evidence{Party: string(ev.Party), Text: ev.Text, Links: ev.Links,
				AddedAt: Time(ev.At), MessageIds: ev.MessageIDs})
		}
	}
	p.Items = LineItems(o.Items(), cur)
	p.Presentment = Presentment(o)
	p.Schedule, p.AmountDue, p.AmountPaid = Schedule(o), amountDue(o), Money(o.Paid().Amount, o.Paid().Currency)
	if d := o.CouponDiscount(); d > 0 {
		p.CouponDiscount, p.StoreFunded = Money(d, cur), Money(o.StoreFunded(), cur)
		p.Coupons = OrderCoupons(o, cur)
	}
	if s := o.Shipment(); s != nil {
		p.Shipment = &orderv1.Shipment{Carrier: s.Carrier, TrackingNumber: s.TrackingNumber, TrackingUrl: s.TrackingURL, ShippedAt: Time(s.ShippedAt)}
	}
	for kind, due := range o.Deadlines() {
		if order.IsReminder(kind) {
			continue // the reminder's event is what users see
		}
		p.Deadlines = append(p.Deadlines, &orderv1.Deadline{Kind: string(kind), DueAt: Time(due)})
	}
	slices.SortFunc(p.Deadlines, func(a, b *orderv1.Deadline) int { return a.DueAt.AsTime().Compare(b.DueAt.AsTime()) })
	if !full {
		return p
	}
	for _, a := range o.Attempts() {
		p.PaymentAttempts = append(p.PaymentAttempts, Attempt(a))
	}
	p.History = History(o.History(), cur)
	// An order is loaded with its latest entries only (the rest are paged
	// by ListOrderEvents); sequences start at 1.
	p.HistoryTruncated = len(p.History) > 0 && p.History[0].Sequence > 1
	return p
}

// History translates history entries of an order in currency cur.
func History(evs []order.Event, cur string) []*orderv1.HistoryEntry {
	out := make([]*orderv1.HistoryEntry, 0, len(evs))
	for _, e := range evs {
		out = append(out, &orderv1.HistoryEntry{Sequence: e.Sequence, Kind: e.Kind, Actor: e.Actor, OccurredAt: Time(e.OccurredAt), Note: e.Note,
			PriceAdjustment: Adjustment(e.Adjustment, cur)})
	}
	return out
}

// SellerOrder translates an order as its seller sees it: in full, except
// how the buyer paid (card brand, last four, account). A seller needs to
// know that an order is paid, not with what.
func SellerOrder(o *order.Order) *orderv1.Order {
	p := Order(o, true)
	// A seller sees that a payment was declined, not how it was made nor
	// why it was declined: both are the buyer's business.
	p.LastDecline = nil
	for _, a := range p.PaymentAttempts {
		a.CardBrand, a.CardLast4, a.Account, a.Decline = "", "", "", nil
	}
	return p
}

var offerKinds = map[order.OfferKind]orderv1.OfferKind{
	order.OfferTotal:       orderv1.OfferKind_OFFER_KIND_TOTAL,
	order.OfferShippingFee: orderv1.OfferKind_OFFER_KIND_SHIPPING_FEE,
}

// OfferKind translates an offer kind of a request (protovalidate refused unknown ones).
func OfferKind(k orderv1.OfferKind) order.OfferKind {
	for d, p := range offerKinds {
		if p == k {
			return d
		}
	}
	return ""
}

var attemptStatuses = map[order.AttemptStatus]orderv1.PaymentAttemptStatus{
	order.AttemptRequiresVerification: orderv1.PaymentAttemptStatus_PAYMENT_ATTEMPT_STATUS_REQUIRES_VERIFICATION,
	order.AttemptProcessing:           orderv1.PaymentAttemptStatus_PAYMENT_ATTEMPT_STATUS_PROCESSING,
	order.AttemptSucceeded:            orderv1.PaymentAttemptStatus_PAYMENT_ATTEMPT_STATUS_SUCCEEDED,
	order.AttemptDeclined:             orderv1.PaymentAttemptStatus_PAYMENT_ATTEMPT_STATUS_DECLINED,
	order.AttemptFailed:               orderv1.PaymentAttemptStatus_PAYMENT_ATTEMPT_STATUS_FAILED,
	order.AttemptCanceled:             orderv1.PaymentAttemptStatus_PAYMENT_ATTEMPT_STATUS_CANCELED,
}

var methods = map[order.Method]orderv1.PaymentMethod{
	order.MethodCard:         orderv1.PaymentMethod_PAYMENT_METHOD_CARD,
	order.MethodWallet:       orderv1.PaymentMethod_PAYMENT_METHOD_WALLET,
	order.MethodBankTransfer: orderv1.PaymentMethod_PAYMENT_METHOD_BANK_TRANSFER,
	order.MethodPayLater:     orderv1.PaymentMethod_PAYMENT_METHOD_PAY_LATER,
}

var refundStatuses = map[order.RefundStatus]orderv1.RefundStatus{
	order.RefundPending:    orderv1.RefundStatus_REFUND_STATUS_PENDING,
	order.RefundProcessing: orderv1.RefundStatus_REFUND_STATUS_PROCESSING,
	order.RefundSucceeded:  orderv1.RefundStatus_REFUND_STATUS_SUCCEEDED,
	order.RefundFailed:     orderv1.RefundStatus_REFUND_STATUS_FAILED,
}

// Decline translates a decline; no decline becomes nil.
func Decline(d order.Decline) *orderv1.Decline {
	if d == (order.Decline{}) {
		return nil
	}
	return &orderv1.Decline{Code: d.Code, Message: d.Message, Advice: d.Advice, Retryable: d.Retryable}
}

// Attempt translates a payment attempt.
func Attempt(a order.Attempt) *orderv1.PaymentAttempt {
	return &orderv1.PaymentAttempt{
		Id: a.ID, Status: attemptStatuses[a.Status], Amount: Money(a.Amount.Amount, a.Amount.Currency),
		Method: methods[a.Method], CardBrand: a.CardBrand, CardLast4: a.CardLast4, Account: a.Account,
		Decline: Decline(a.Decline), VerificationFailures: int32(a.VerificationFailures),
		CreatedAt: Time(a.CreatedAt), UpdatedAt: Time(a.UpdatedAt),
	}
}

// Refund translates a refund of an order.
func Refund(orderID string, r order.Refund) *orderv1.Refund {
	p := &orderv1.Refund{
		Id: r.ID, OrderId: orderID, PaymentAttemptId: r.AttemptID, Amount: Money(r.Amount.Amount, r.Amount.Currency),
		Method: methods[r.Method], Status: refundStatuses[r.Status], Reason: r.Reason, DueAt: Time(r.DueAt),
		CreatedAt: Time(r.CreatedAt), CompletedAt: Time(r.CompletedAt), SettledBy: r.SettledBy, SettlementNote: r.SettlementNote,
	}
	if r.Status == order.RefundFailed {
		p.FailureReason = r.LastError
	}
	if fx := r.FX; fx.Currency != "" {
		p.Fx = &orderv1.RefundFx{StoreDebit: Money(fx.Debit, fx.Currency), Rate: fx.Rate}
		if fx.Rate != "" {
			p.Fx.Cost, p.Fx.PlatformDifference = Money(fx.Cost, fx.Currency), Money(fx.Difference, fx.Currency)
		}
	}
	return p
}

// SellerOrders translates a list of a store's orders without their
// details, and without what is the buyer's business (SellerOrder).
func SellerOrders(os []*order.Order) []*orderv1.Order {
	out := Orders(os)
	for _, p := range out {
		p.LastDecline = nil
	}
	return out
}

// Orders translates a list of orders without their details.
func Orders(os []*order.Order) []*orderv1.Order {
	out := make([]*orderv1.Order, len(os))
	for i, o := range os {
		out[i] = Order(o, false)
	}
	return out
}

// Product translates a product.
func Product(p catalog.Product) *sellerv1.Product {
	return &sellerv1.Product{
		Id: p.ID, SellerId: p.SellerID, Title: p.Title, Price: Money(p.Price, p.Currency),
		ShippingFee: Money(p.ShippingFee, p.Currency), Stock: p.Stock, HandlingDays: int32(p.HandlingDays),
		CreatedAt: Time(p.CreatedAt), ProtectionDays: int32(p.ProtectionDays), PaymentPlan: Plan(p.Plan),
	}
}

// ListOrdersRequest is what the buyer's and the seller's ListOrders
// requests have in common.
type ListOrdersRequest interface {
	GetStatus() orderv1.OrderStatus
	GetCreatedAfter() *timestamppb.Timestamp
	GetCreatedBefore() *timestamppb.Timestamp
	GetPageSize() int32
	GetPageToken() string
}

// PageSize is a request's page size, or def when it asks for none (the
// protos bound what it may ask).
func PageSize(asked int32, def int) int {
	if asked == 0 {
		return def
	}
	return int(asked)
}

// ListQuery translates a ListOrders request of party id (20 orders a page
// unless the request asks otherwise).
func ListQuery(party postgres.Party, id string, r ListOrdersRequest) postgres.ListQuery {
	return postgres.ListQuery{
		Party: party, PartyID: id, Status: Status(r.GetStatus()),
		CreatedAfter: FromTime(r.GetCreatedAfter()), CreatedBefore: FromTime(r.GetCreatedBefore()),
		PageSize: PageSize(r.GetPageSize(), 20), PageToken: r.GetPageToken(),
	}
}

// Evidence translates evidence submitted by party.
func Evidence(party order.Party, e *orderv1.EvidenceInput) order.Evidence {
	return order.Evidence{Party: party, Text: e.GetText(), Links: e.GetLinks(), MessageIDs: e.GetMessageIds()}
}

// Message translates a message of an order's conversation.
func Message(orderID string, m order.Message) *orderv1.OrderMessage {
	return &orderv1.OrderMessage{Id: m.ID, OrderId: orderID, Author: string(m.Author), AuthorId: m.AuthorID, Text: m.Text,
		Links: m.Links, SentAt: Time(m.SentAt)}
}

// Adjustment translates a price adjustment of an order in currency cur.
func Adjustment(a *order.PriceAdjustment, cur string) *orderv1.PriceAdjustment {
	if a == nil {
		return nil
	}
	return &orderv1.PriceAdjustment{
		OldTotal: Money(a.OldTotal, cur), NewTotal: Money(a.NewTotal, cur),
		OldShippingFee: Money(a.OldShippingFee, cur), NewShippingFee: Money(a.NewShippingFee, cur), Reason: a.Reason,
		ProposedBy: a.ProposedBy,
	}
}

// EventFilter narrows base by a watch request's filter.
func EventFilter(base events.Filter, f *orderv1.EventFilter) events.Filter {
	base.OrderID, base.Kinds = f.GetOrderId(), f.GetKinds()
	return base
}

// WatchSender adapts a stream's send to a watch: ev and hb wrap an event
// and a heartbeat in the stream's response.
func WatchSender[R any](send func(R) error, ev func(*orderv1.OrderEvent) R, hb func(*orderv1.EventHeartbeat) R) func(events.Item) error {
	return func(it events.Item) error {
		if it.Event == nil {
			return send(hb(&orderv1.EventHeartbeat{Cursor: strconv.FormatInt(it.Cursor, 10), SentAt: timestamppb.Now()}))
		}
		return send(ev(FeedEvent(it.Event)))
	}
}

// FeedEvent translates an event of the feed, with its kind's detail.
func FeedEvent(e *events.Event) *orderv1.OrderEvent {
	cur := e.Currency
	p := &orderv1.OrderEvent{
		Cursor: strconv.FormatInt(e.Cursor, 10), EventId: e.ID, OrderId: e.OrderID, Sequence: e.Sequence, Kind: e.Kind,
		Actor: e.Actor, OccurredAt: Time(e.OccurredAt), Status: StatusOf(e.Status), Version: e.Version, Note: e.Note,
		BuyerId: e.BuyerID, SellerId: e.SellerID,
	}
	d := e.Detail
	switch {
	case e.Adjustment != nil:
		p.Detail = &orderv1.OrderEvent_PriceAdjustment{PriceAdjustment: Adjustment(e.Adjustment, cur)}
	case d == nil:
	case e.Kind == "message_sent":
		author, id, _ := strings.Cut(e.Actor, ":")
		p.Detail = &orderv1.OrderEvent_Message{Message: &orderv1.OrderMessage{Id: d.MessageID, OrderId: e.OrderID,
			Author: author, AuthorId: id, Text: d.Text, Links: d.Links, SentAt: Time(e.OccurredAt)}}
	case e.Kind == "paid" || e.Kind == "part_paid" || e.Kind == "deposit_kept":
		pd := &orderv1.PaymentEventDetail{PaymentAttemptId: d.AttemptID, Amount: Money(d.Amount, cmp.Or(d.Currency, cur)),
			Method: methods[order.Method(d.Method)]}
		if d.Currency != "" {
			pd.Credited = Money(d.Credited, cur)
		}
		p.Detail = &orderv1.OrderEvent_Payment{Payment: pd}
	case strings.HasPrefix(e.Kind, "refund_"):
		p.Detail = &orderv1.OrderEvent_Refund{Refund: &orderv1.RefundEventDetail{RefundId: d.RefundID,
			Amount: Money(d.Amount, cmp.Or(d.Currency, cur)), PaymentAttemptId: d.AttemptID}}
	case strings.HasPrefix(e.Kind, "coupon_"):
		p.Detail = &orderv1.OrderEvent_Coupon{Coupon: &orderv1.CouponEventDetail{CouponId: d.CouponID, Code: d.Coupon, Amount: Money(d.Amount, cur)}}
	case e.Kind == "offer_made":
		p.Detail = &orderv1.OrderEvent_Offer{Offer: &orderv1.OfferEventDetail{Kind: offerKinds[order.OfferKind(d.OfferKind)],
			Amount: Money(d.Amount, cur), Note: d.Text}}
	}
	return p
}
