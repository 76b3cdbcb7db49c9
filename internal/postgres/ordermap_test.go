package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/testenv"
)

// TestOrderTableIsTheTable: orderTable names every column of orders (a
// migration that adds one without its entry fails here), and an order
// with every field set reads back as it was written, through the INSERT,
// the batched UPDATE and the scan it makes.
func TestOrderTableIsTheTable(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	rows, _ := db.Pool().Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' AND table_schema = current_schema() ORDER BY column_name`)
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	mapped := postgres.OrderTableColumns()
	slices.Sort(mapped)
	if !slices.Equal(cols, mapped) {
		t.Fatalf("orders has %v; orderTable maps %v", cols, mapped)
	}

	now := time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC)
	rate, err := order.ParseRate("1.0852")
	if err != nil {
		t.Fatal(err)
	}
	o, err := order.New(order.NewOrderParams{ID: "6f0c1a52-8a3e-4b7e-9d55-0c8f1b2a3c4d", CheckoutID: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
		BuyerID: "alice", SellerID: "store-x", Currency: "EUR", Items: []order.Item{{ProductID: "p1", Title: "Lamp", Quantity: 2, UnitPrice: 700}},
		ShippingFee: 90, HandlingDays: 4, ProtectionDays: 75, PaymentWindow: time.Hour, Now: now, Quote: &order.Quote{ID: "q1", Base: "EUR",
			Currency: "USD", Rate: rate, Source: "test", QuotedAt: now, ExpiresAt: now.Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateOrders(ctx, []*order.Order{o}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Update(ctx, o.ID(), func(o *order.Order) error {
		a := order.Attempt{ID: "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", IdempotencyKey: "k", Fingerprint: "f", Method: "card"}
		if err := o.BeginPayment(now, o.Due(), a); err != nil {
			return err
		}
		if err := o.ApplyResult(now, a.ID, order.Result{Kind: order.ResultSucceeded, Captured: true, ProviderRef: "ch"}, order.DefaultPolicy); err != nil {
			return err
		}
		return o.Ship(now, order.Shipment{Carrier: "DHL", TrackingNumber: "JD0001", ShippedAt: now}, order.DefaultPolicy)
	})
	if err != nil {
		t.Fatal(err)
	}
	read, err := db.Get(ctx, o.ID())
	if err != nil {
		t.Fatal(err)
	}
	want, have := got.Stored(), read.Stored()
	want.History, have.History, want.Attempts, have.Attempts = nil, nil, nil, nil
	if want.Version != 2 || have.Version != 2 || have.Shipment == nil || have.PaidAttemptID == "" || have.Currency != "EUR" ||
		have.HandlingDays != 4 || have.ProtectionDays != 75 || !have.CreatedAt.Equal(now) || have.Quote == nil ||
		have.Quote.Rate.String() != "1.0852" || have.Quote.Currency != "USD" || !have.Quote.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("read back %+v", have)
	}
	var total int64
	if err := db.Pool().QueryRow(ctx, `SELECT total_minor FROM orders WHERE id = $1`, o.ID()).Scan(&total); err != nil || total != 1490 ||
		read.Due() != (order.Money{Amount: 1617, Currency: "USD"}) {
		t.Fatalf("total_minor %d (%v), want 1490; due %v, want 16.17 USD", total, err, read.Due())
	}
}
