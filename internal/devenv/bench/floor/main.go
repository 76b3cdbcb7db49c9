// Command floor is the bench's floor: the leanest server the stack allows
// for two of Souk's operations, measured beside Souk in the same run.
//
// It answers GetOrder and AdjustOrderPrice over the same gRPC, pgx and
// go-redis, with the same SQL as pgbench's run of each: the order's six
// statements in one pipeline, and for the price change a Redis lock (SET
// NX, released by a compare-and-delete) and the version-checked write with
// its event in one pipeline. It does nothing else: no authentication,
// validation, interceptors or logs, no rows decoded beyond the version and
// the history's length, and a reply prepared once. Souk's share of the
// floor is what Souk's own work costs on top of the stack it is built on.
//
// It serves on SOUK_FLOOR_ADDR, with SOUK_DATABASE_URL, SOUK_REDIS_ADDR and
// SOUK_REDIS_PREFIX as the services take them, and Go's profiles
// (/debug/pprof/) on SOUK_FLOOR_PPROF_ADDR if it is set, to compare with
// Souk's function by function under the same load. The bench points it at
// pgbench's copy of the record, so that its commits and events stay out of
// Souk's counts and off Souk's relay.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	orderv1 "github.com/souk-dev/souk/gen/go/souk/order/v1"
	sellerv1 "github.com/souk-dev/souk/gen/go/souk/seller/v1"
	"github.com/souk-dev/souk/internal/postgres"
	"github.com/souk-dev/souk/internal/protoconv"
)

// read is the whole order, as pgbench reads it.
var read = []string{
	`SELECT * FROM orders WHERE id = $1::uuid`,
	`SELECT oc.order_id, r.state, r.terms, c.ends_at, ARRAY(SELECT o2.order_id FROM order_coupons o2 JOIN orders x ON x.id = o2.order_id
  WHERE o2.coupon_id = oc.coupon_id AND o2.checkout_id = oc.checkout_id AND o2.order_id <> oc.order_id AND x.status <> 'CANCELLED')
  FROM order_coupons oc JOIN coupon_redemptions r ON r.coupon_id = oc.coupon_id AND r.checkout_id = oc.checkout_id
  JOIN coupons c ON c.id = oc.coupon_id WHERE oc.order_id = $1::uuid`,
	`SELECT * FROM payment_attempts WHERE order_id = $1::uuid ORDER BY created_at, id`,
	`SELECT * FROM refunds WHERE order_id = $1::uuid ORDER BY created_at, id`,
	`SELECT * FROM order_events WHERE order_id = $1::uuid ORDER BY sequence DESC LIMIT 200`,
}

const (
	change = `WITH changed AS (UPDATE orders o SET version = o.version + 1, updated_at = now(), shipping_fee_minor = $2
  WHERE o.id = $1::uuid AND o.version = $3 RETURNING 1)
  SELECT souk_expect_changed(count(*), 1) FROM changed`
	event = `WITH e AS (INSERT INTO order_events (order_id, sequence, kind, actor, occurred_at, note, status_after, version_after, seller_id)
  VALUES ($1::uuid, $2, 'price_adjusted', 'seller', now(), '', 'PENDING_PAYMENT', $3, 'bench-store') RETURNING id, occurred_at)
  INSERT INTO event_queue SELECT id, occurred_at FROM e`
)

// unlock deletes a lock only while it holds the token it was taken with.
var unlock = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)

type floor struct {
	pool   *pgxpool.Pool
	rdb    *redis.Client
	prefix string
	reply  *orderv1.Order
}

// buyer and seller are the floor's two services.
type (
	buyer struct {
		buyerv1.UnimplementedBuyerServiceServer
		*floor
	}
	seller struct {
		sellerv1.UnimplementedSellerServiceServer
		*floor
	}
)

// load reads the order and returns its version and the length of its
// history; the rest of its rows are read, not decoded.
func (f *floor) load(ctx context.Context, id string) (version, events int64, err error) {
	b := &pgx.Batch{}
	for _, q := range read {
		b.Queue(q, id)
	}
	br := f.pool.SendBatch(ctx, b)
	defer br.Close()
	found := false
	for i := range read {
		rows, err := br.Query()
		if err != nil {
			return 0, 0, err
		}
		for rows.Next() {
			if i == len(read)-1 {
				events++
			}
			if i > 0 {
				continue
			}
			found = true
			for j, fd := range rows.FieldDescriptions() {
				if fd.Name == "version" && fd.Format == pgx.BinaryFormatCode {
					version = int64(binary.BigEndian.Uint64(rows.RawValues()[j]))
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, 0, err
		}
	}
	if !found {
		return 0, 0, status.Errorf(codes.NotFound, "order %s", id)
	}
	return version, events, br.Close()
}

func (f buyer) GetOrder(ctx context.Context, req *buyerv1.GetOrderRequest) (*buyerv1.GetOrderResponse, error) {
	if _, _, err := f.load(ctx, req.OrderId); err != nil {
		return nil, err
	}
	return &buyerv1.GetOrderResponse{Order: f.reply}, nil
}

func (f seller) AdjustOrderPrice(ctx context.Context, req *sellerv1.AdjustOrderPriceRequest) (*sellerv1.AdjustOrderPriceResponse, error) {
	version, events, err := f.load(ctx, req.OrderId)
	if err != nil {
		return nil, err
	}
	key, token := f.prefix+"floor:lock:"+req.OrderId, rand.Text()
	ok, err := f.rdb.SetNX(ctx, key, token, 10*time.Second).Result()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, status.Error(codes.Aborted, "order locked")
	}
	defer unlock.Run(context.WithoutCancel(ctx), f.rdb, []string{key}, token)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(change, req.OrderId, req.GetShippingFee().GetAmountMinor(), version)
	b.Queue(event, req.OrderId, events+1, version+1)
	b.Queue("COMMIT")
	if err := f.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return &sellerv1.AdjustOrderPriceResponse{Order: f.reply}, nil
}

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	db, err := postgres.Open(ctx, os.Getenv("SOUK_DATABASE_URL"))
	if err != nil {
		return err
	}
	defer db.Close()
	// The reply: one of the seeded orders, as Souk would answer with it.
	var id string
	if err := db.Pool().QueryRow(ctx, `SELECT id::text FROM orders ORDER BY id LIMIT 1`).Scan(&id); err != nil {
		return fmt.Errorf("an order for the reply: %w", err)
	}
	o, err := db.Get(ctx, id)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("SOUK_REDIS_ADDR")})
	defer rdb.Close()
	f := &floor{pool: db.Pool(), rdb: rdb, prefix: os.Getenv("SOUK_REDIS_PREFIX"), reply: protoconv.Order(o, true)}
	addr := os.Getenv("SOUK_FLOOR_ADDR")
	if addr == "" {
		return errors.New("SOUK_FLOOR_ADDR is not set")
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if pa := os.Getenv("SOUK_FLOOR_PPROF_ADDR"); pa != "" {
		go func() { log.Print(http.ListenAndServe(pa, nil)) }() // net/http/pprof's handlers
	}
	s := grpc.NewServer()
	buyerv1.RegisterBuyerServiceServer(s, buyer{floor: f})
	sellerv1.RegisterSellerServiceServer(s, seller{floor: f})
	healthpb.RegisterHealthServer(s, health.NewServer())
	reflection.Register(s) // ghz's runner reads the methods from the server
	return s.Serve(lis)
}
