package postgres

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/souk-dev/souk/internal/order"
)

// orderColumn is one column of the orders table and how an order maps to
// it. orderTable is the one place a column is named, typed, read and
// written: the SELECT list, the scan, the INSERT and the batched UPDATE
// are all made from it, so a new column is one entry.
type orderColumn struct {
	name string
	// typ is its type as jsonb_to_recordset declares it (the UPDATE's rows
	// come as JSON).
	typ string
	// read is the expression a SELECT reads it with ("": the name).
	read string
	// scan returns where a read value goes; nil: never read.
	scan func(*orderScan) any
	// value is what is written, from the change (the domain order and its
	// stored fields as they now stand).
	value func(*change) any
	// fixed columns are written once, when the order is created.
	fixed bool
	// json columns that may be NULL arrive as JSON null in an UPDATE's rows.
	nullJSON bool
}

// orderScan is a row of orders being read: the stored fields, and the
// columns kept in another form until done converts them.
type orderScan struct {
	s           order.Stored
	status      string
	cancelledBy string
	items       []itemJSON
	shipment    *shipmentJSON
	quote       *quoteJSON
	deadlines   map[order.DeadlineKind]time.Time
}

// done is the order as read.
func (r *orderScan) done() order.Stored {
	s := r.s
	s.Status, s.CancelledBy = order.Status(r.status), order.Party(r.cancelledBy)
	s.Deadlines = r.deadlines
	if s.Deadlines == nil {
		s.Deadlines = map[order.DeadlineKind]time.Time{}
	}
	for _, it := range r.items {
		s.Items = append(s.Items, order.Item(it))
	}
	if r.shipment != nil {
		sh := order.Shipment(*r.shipment)
		s.Shipment = &sh
	}
	if q := r.quote; q != nil {
		rate, _ := order.ParseRate(q.Rate) // written from an order.Rate
		s.Quote = &order.Quote{ID: q.ID, Base: q.Base, Currency: q.Currency, Rate: rate, Source: q.Source, QuotedAt: q.QuotedAt, ExpiresAt: q.ExpiresAt}
	}
	return s
}

// quoteJSON is an order's exchange-rate quote as its column keeps it.
type quoteJSON struct {
	ID        string    `json:"id"`
	Base      string    `json:"base"`
	Currency  string    `json:"currency"`
	Rate      string    `json:"rate"`
	Source    string    `json:"source"`
	QuotedAt  time.Time `json:"quoted_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func quoteOf(q *order.Quote) *quoteJSON {
	if q == nil {
		return nil
	}
	return &quoteJSON{ID: q.ID, Base: q.Base, Currency: q.Currency, Rate: q.Rate.String(), Source: q.Source, QuotedAt: q.QuotedAt, ExpiresAt: q.ExpiresAt}
}

// orderTable is the orders table, column by column, in the order a SELECT
// reads them. id and version are the keys of an UPDATE: it writes a row
// only at the version it was read, and bumps it.
var orderTable = []orderColumn{
	{name: "id", typ: "uuid", fixed: true, scan: func(r *orderScan) any { return &r.s.ID }, value: func(c *change) any { return c.now.ID }},
	{name: "checkout_id", typ: "uuid", fixed: true, scan: func(r *orderScan) any { return &r.s.CheckoutID },
		value: func(c *change) any { return c.now.CheckoutID }},
	{name: "buyer_id", typ: "text", fixed: true, scan: func(r *orderScan) any { return &r.s.BuyerID },
		value: func(c *change) any { return c.now.BuyerID }},
	{name: "seller_id", typ: "text", fixed: true, scan: func(r *orderScan) any { return &r.s.SellerID },
		value: func(c *change) any { return c.now.SellerID }},
	{name: "status", typ: "text", scan: func(r *orderScan) any { return &r.status }, value: func(c *change) any { return string(c.now.Status) }},
	{name: "currency", typ: "text", fixed: true, scan: func(r *orderScan) any { return &r.s.Currency },
		value: func(c *change) any { return c.now.Currency }},
	{name: "items", typ: "jsonb", scan: func(r *orderScan) any { return &r.items }, value: func(c *change) any { return itemsJSON(c.now.Items) }},
	{name: "shipping_fee_minor", typ: "bigint", scan: func(r *orderScan) any { return &r.s.ShippingFee },
		value: func(c *change) any { return c.now.ShippingFee }},
	{name: "handling_days", typ: "integer", fixed: true, scan: func(r *orderScan) any { return &r.s.HandlingDays },
		value: func(c *change) any { return c.now.HandlingDays }},
	{name: "version", typ: "bigint", scan: func(r *orderScan) any { return &r.s.Version }, value: func(c *change) any { return c.now.Version }},
	{name: "created_at", typ: "timestamptz", fixed: true, scan: func(r *orderScan) any { return &r.s.CreatedAt },
		value: func(c *change) any { return pgTime(c.now.CreatedAt) }},
	{name: "updated_at", typ: "timestamptz", scan: func(r *orderScan) any { return &r.s.UpdatedAt },
		value: func(c *change) any { return pgTime(c.now.UpdatedAt) }},
	{name: "cancel_reason", typ: "text", scan: func(r *orderScan) any { return &r.s.CancelReason },
		value: func(c *change) any { return c.now.CancelReason }},
	{name: "last_decline_code", typ: "text", scan: func(r *orderScan) any { return &r.s.LastDecline.Code },
		value: func(c *change) any { return c.now.LastDecline.Code }},
	{name: "last_decline_message", typ: "text", scan: func(r *orderScan) any { return &r.s.LastDecline.Message },
		value: func(c *change) any { return c.now.LastDecline.Message }},
	{name: "shipment", typ: "jsonb", nullJSON: true, scan: func(r *orderScan) any { return &r.shipment },
		value: func(c *change) any { return shipmentOf(c.now.Shipment) }},
	{name: "last_decline_advice", typ: "text", scan: func(r *orderScan) any { return &r.s.LastDecline.Advice },
		value: func(c *change) any { return c.now.LastDecline.Advice }},
	{name: "last_decline_retryable", typ: "boolean", scan: func(r *orderScan) any { return &r.s.LastDecline.Retryable },
		value: func(c *change) any { return c.now.LastDecline.Retryable }},
	{name: "cancelled_by", typ: "text", scan: func(r *orderScan) any { return &r.cancelledBy },
		value: func(c *change) any { return string(c.now.CancelledBy) }},
	{name: "cancellation", typ: "jsonb", nullJSON: true, scan: func(r *orderScan) any { return &r.s.Cancellation },
		value: func(c *change) any { return c.now.Cancellation }},
	{name: "dispute", typ: "jsonb", nullJSON: true, scan: func(r *orderScan) any { return &r.s.Dispute },
		value: func(c *change) any { return c.now.Dispute }},
	{name: "payment_due_at", typ: "timestamptz", fixed: true, scan: func(r *orderScan) any { return &r.s.PaymentDueAt },
		value: func(c *change) any { return pgTime(c.now.PaymentDueAt) }},
	{name: "protection_days", typ: "integer", fixed: true, scan: func(r *orderScan) any { return &r.s.ProtectionDays },
		value: func(c *change) any { return c.now.ProtectionDays }},
	{name: "discount_minor", typ: "bigint", scan: func(r *orderScan) any { return &r.s.Discount }, value: func(c *change) any { return c.now.Discount }},
	{name: "offer", typ: "jsonb", nullJSON: true, scan: func(r *orderScan) any { return &r.s.Offer }, value: func(c *change) any { return c.now.Offer }},
	{name: "paid_attempt_id", typ: "uuid", read: "coalesce(paid_attempt_id::text, '')", scan: func(r *orderScan) any { return &r.s.PaidAttemptID },
		value: func(c *change) any { return nullUUID(c.now.PaidAttemptID) }},
	{name: "quote", typ: "jsonb", nullJSON: true, scan: func(r *orderScan) any { return &r.quote }, value: func(c *change) any { return quoteOf(c.now.Quote) }},
	{name: "schedule", typ: "jsonb", nullJSON: true, scan: func(r *orderScan) any { return &r.s.Schedule },
		value: func(c *change) any { return c.now.Schedule }},
	// The open deadlines, read with the order (order_deadlines is the
	// sweeper's index of them, written beside).
	{name: "deadlines", typ: "jsonb", nullJSON: true, scan: func(r *orderScan) any { return &r.deadlines },
		value: func(c *change) any { return deadlinesOf(c.now.Deadlines) }},
	// What the buyer pays, for SQL's eyes (reports, plans): the domain
	// computes it, never reads it.
	{name: "total_minor", typ: "bigint", value: func(c *change) any { return c.o.Total().Amount }},
}

// deadlinesOf is an order's deadlines as its column keeps them: a JSON
// object of due times by kind, or nil (NULL) for none.
func deadlinesOf(ds map[order.DeadlineKind]time.Time) map[order.DeadlineKind]time.Time {
	if len(ds) == 0 {
		return nil
	}
	out := make(map[order.DeadlineKind]time.Time, len(ds))
	for k, t := range ds {
		out[k] = pgTime(t)
	}
	return out
}

// The statements made from orderTable.
var (
	// orderColumns is the SELECT list of an order, for scanOrder.
	orderColumns string
	// insertOrderSQL inserts one order ($n: the n-th column's value; the
	// version read, 0, becomes 1).
	insertOrderSQL string
	// updateOrdersSQL writes back the orders of a batch from JSON rows
	// ($1), each only at the version it was read, and bumps it; $2 is how
	// many rows must change, or souk_expect_changed aborts the transaction;
	// $3 is their stores (on Citus, what routes the statement), by the
	// match oneOrAny gives.
	updateOrdersSQL map[string]string
	// readColumns are the columns scanOrder reads, in orderColumns' order.
	readColumns []orderColumn
)

func init() {
	var reads, names, values, sets, defs []string
	for i, col := range orderTable {
		if col.scan != nil {
			readColumns = append(readColumns, col)
			reads = append(reads, cmpOr(col.read, col.name))
		}
		names = append(names, col.name)
		p := "$" + strconv.Itoa(i+1)
		if col.name == "version" {
			p += "::bigint + 1"
		}
		values = append(values, p)
		if col.fixed && !orderKeyColumn(col.name) {
			continue
		}
		defs = append(defs, col.name+" "+col.typ)
		switch {
		case orderKeyColumn(col.name):
		case col.name == "version":
			sets = append(sets, "version = o.version + 1")
		case col.nullJSON:
			sets = append(sets, fmt.Sprintf("%[1]s = nullif(v.%[1]s, 'null')", col.name))
		default:
			sets = append(sets, fmt.Sprintf("%[1]s = v.%[1]s", col.name))
		}
	}
	orderColumns = strings.Join(reads, ", ")
	insertOrderSQL = "INSERT INTO orders (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(values, ", ") + ")"
	update := func(stores string) string {
		return "WITH changed AS (UPDATE orders o SET " + strings.Join(sets, ", ") +
			" FROM jsonb_to_recordset($1::jsonb) AS v(" + strings.Join(defs, ", ") + ")" +
			" WHERE o.id = v.id AND o.seller_id = v.seller_id AND o.version = v.version AND o.seller_id " + stores +
			" RETURNING 1) SELECT souk_expect_changed(count(*), $2) FROM changed"
	}
	one, many := paramMatches(3, "text")
	updateOrdersSQL = map[string]string{one: update(one), many: update(many)}
}

// orderKeyColumn reports whether the column is part of an order's key,
// which an UPDATE's rows carry to find it (its store names its shard on
// Citus).
func orderKeyColumn(name string) bool { return name == "id" || name == "seller_id" }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// scanOrder scans a row of orderColumns.
func scanOrder(row interface{ Scan(...any) error }) (order.Stored, error) {
	var r orderScan
	targets := make([]any, 0, len(readColumns))
	for _, col := range readColumns {
		targets = append(targets, col.scan(&r))
	}
	if err := row.Scan(targets...); err != nil {
		return order.Stored{}, err
	}
	return r.done(), nil
}

// insertArgs are the values insertOrderSQL takes for a new order.
func insertArgs(c *change) []any {
	args := make([]any, len(orderTable))
	for i, col := range orderTable {
		args[i] = col.value(c)
	}
	return args
}

// updateRows are the JSON rows updateOrdersSQL takes: each change's
// columns a change may write, with its id and the version it was read at.
func updateRows(cs []change) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	b.WriteByte('[')
	for i := range cs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('{')
		first := true
		for _, col := range orderTable {
			if col.fixed && !orderKeyColumn(col.name) {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString(strconv.Quote(col.name))
			b.WriteByte(':')
			if err := enc.Encode(col.value(&cs[i])); err != nil {
				// Every value here is made of plain fields and strings.
				panic(fmt.Sprintf("encode %s: %v", col.name, err))
			}
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.Bytes()
}

// pgTime is t as PostgreSQL keeps it (microseconds), so that a value
// written as JSON reads back equal to one written by pgx.
func pgTime(t time.Time) time.Time { return t.Truncate(time.Microsecond) }
