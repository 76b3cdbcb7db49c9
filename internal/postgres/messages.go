package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/souk-dev/souk/internal/order"
)

// queueMessages queues the insert of the messages a change sent.
func queueMessages(b *pgx.Batch, o *order.Order) {
	for _, m := range o.NewMessages() {
		links := m.Links
		if links == nil {
			links = []string{}
		}
		b.Queue(`INSERT INTO order_messages (id, order_id, author, author_id, text, links, sent_at, seller_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
			m.ID, o.ID(), string(m.Author), m.AuthorID, m.Text, links, m.SentAt, o.SellerID())
	}
}

// Message returns one message of an order's conversation.
func (db *DB) Message(ctx context.Context, orderID, id string) (order.Message, error) {
	var m order.Message
	var author string
	k, err := db.keyOf(ctx, orderID)
	if err != nil {
		return m, err
	}
	err = db.pool.QueryRow(ctx, `SELECT id::text, author, author_id, text, links, sent_at FROM order_messages
		WHERE order_id = $1 AND seller_id = $3 AND id = $2`, k.id, id, k.seller).Scan(&m.ID, &author, &m.AuthorID, &m.Text, &m.Links, &m.SentAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, fmt.Errorf("%w: message %s", order.ErrNotFound, id)
	} else if err != nil {
		return m, fmt.Errorf("read message: %w", err)
	}
	m.Author = order.Party(author)
	return m, nil
}

// ListMessages returns one page of an order's conversation, oldest first,
// and the token of the next page ("" on the last).
func (db *DB) ListMessages(ctx context.Context, orderID string, pageSize int, pageToken string) ([]order.Message, string, error) {
	k, err := db.keyOf(ctx, orderID)
	if err != nil {
		return nil, "", err
	}
	var f filter
	f.and("order_id = ?", k.id)
	f.and("seller_id = ?", k.seller)
	if err := f.after(pageToken, "(sent_at, id) > (?, ?::uuid)"); err != nil {
		return nil, "", err
	}
	where, args := f.where("ORDER BY sent_at, id", pageSize+1)
	ms, err := read(ctx, func() ([]order.Message, error) {
		rows, _ := db.pool.Query(ctx, `SELECT id::text, author, author_id, text, links, sent_at FROM order_messages `+where, args...)
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (order.Message, error) {
			var m order.Message
			var author string
			err := r.Scan(&m.ID, &author, &m.AuthorID, &m.Text, &m.Links, &m.SentAt)
			m.Author = order.Party(author)
			return m, err
		})
	})
	if err != nil {
		return nil, "", fmt.Errorf("list messages: %w", err)
	}
	ms, next := trimPage(ms, pageSize, func(m order.Message) (time.Time, string) { return m.SentAt, m.ID })
	return ms, next, nil
}

// CheckMessages reports an error unless every id is a message of the order.
// Messages are never deleted or moved, so the answer stays true: callers
// check before they lock the order, never inside the locked transaction,
// where a second connection of the pool could wait on the first (with the
// pool exhausted by such transactions, none would go on).
func (db *DB) CheckMessages(ctx context.Context, orderID string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	k, err := db.keyOf(ctx, orderID)
	if err != nil {
		return err
	}
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM order_messages WHERE order_id = $1 AND seller_id = $3 AND id = ANY($2::uuid[])`,
		k.id, ids, k.seller).Scan(&n); err != nil {
		return fmt.Errorf("check messages: %w", err)
	}
	if n != len(ids) {
		return fmt.Errorf("%w: evidence cites a message that is not in the order's conversation", order.ErrInvalid)
	}
	return nil
}
