package server

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/souk-dev/souk/internal/catalog"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/postgres"
)

// errorCodes is the one table from domain errors to gRPC codes. The first
// match wins; the gateway turns the code into the HTTP status.
var errorCodes = []struct {
	err  error
	code codes.Code
}{
	{order.ErrInvalid, codes.InvalidArgument},
	{order.ErrNotFound, codes.NotFound},
	{catalog.ErrNotFound, codes.NotFound},
	{order.ErrIllegalTransition, codes.FailedPrecondition},
	{order.ErrTotalMismatch, codes.FailedPrecondition},
	{order.ErrPaymentInProgress, codes.FailedPrecondition},
	{order.ErrIdempotencyKeyReused, codes.FailedPrecondition},
	{catalog.ErrOutOfStock, codes.FailedPrecondition},
	{order.ErrAlreadyFinal, codes.FailedPrecondition},
	{order.ErrStoreKeyTaken, codes.FailedPrecondition},
	{order.ErrConflict, codes.Aborted},
	{order.ErrTooMany, codes.ResourceExhausted},
	{payment.ErrTransient, codes.Unavailable},
	{payment.ErrRefused, codes.FailedPrecondition},
	{payment.ErrBadSignature, codes.Unauthenticated},
	{payment.ErrBadEvent, codes.InvalidArgument},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// Code returns the gRPC code the error table gives err: Unavailable for a
// fault of PostgreSQL or Redis that a retry may get past (see transient),
// Internal for errors it does not know.
func Code(err error) codes.Code {
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	if transient(err) {
		return codes.Unavailable
	}
	return codes.Internal
}

// transient reports whether err is PostgreSQL or Redis being unreachable,
// restarting or failing over, rather than a bug.
func transient(err error) bool {
	if postgres.Transient(err) || errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"} {
			if strings.HasPrefix(rerr.Error(), p) {
				return true
			}
		}
	}
	return false
}

// retryAfter is the pause suggested to a client whose call met a transient fault.
const retryAfter = time.Second

// ToStatus maps err to a gRPC status error. Domain errors keep their message,
// which the domain writes for the caller; a transient fault of the database
// or Redis is UNAVAILABLE with a retry hint; anything unknown is logged with
// its detail and returned as a bare "internal error".
func ToStatus(ctx context.Context, log *slog.Logger, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if transient(err) && !errors.Is(err, payment.ErrTransient) {
		log.WarnContext(ctx, "transient fault", "err", err)
		st, derr := status.New(codes.Unavailable, "a backing service is unavailable; retry shortly").
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)})
		if derr != nil {
			return status.Error(codes.Unavailable, "a backing service is unavailable; retry shortly")
		}
		return st.Err()
	}
	if c := Code(err); c != codes.Internal {
		return withDetails(status.New(c, err.Error()), err).Err()
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return status.Error(codes.Internal, "internal error")
}

// reasons are the stable reasons of the refusals a client acts on
// (google.rpc.ErrorInfo), the first match winning: a client branches on
// these, never on a message's words.
var reasons = []struct {
	err    error
	reason string
}{
	{order.ErrTotalMismatch, "TOTAL_CHANGED"},
	{order.ErrOfferOpen, "OFFER_OPEN"},
	{order.ErrPaymentInProgress, "PAYMENT_OPEN"},
	{order.ErrIdempotencyKeyReused, "IDEMPOTENCY_KEY_REUSED"},
	{catalog.ErrOutOfStock, "OUT_OF_STOCK"},
	{order.ErrConflict, "CONFLICT"},
	{order.ErrTooMany, "TOO_MANY"},
	{order.ErrCouponNotApplicable, "COUPON_NOT_APPLICABLE"},
	{order.ErrQuoteExpired, "QUOTE_EXPIRED"},
	{order.ErrIllegalTransition, "ILLEGAL_TRANSITION"},
	{order.ErrStoreKeyTaken, "STORE_KEY_TAKEN"},
	{payment.ErrTransient, "PROVIDER_UNAVAILABLE"},
	{payment.ErrRefused, "PROVIDER_REFUSED"},
}

// ErrorDomain is the domain of Souk's google.rpc.ErrorInfo reasons.
const ErrorDomain = "souk.dev"

// withDetails adds what a client acts on to st: the field of an invalid
// input (google.rpc.BadRequest) and a stable reason (google.rpc.ErrorInfo),
// with the order's current total for TOTAL_CHANGED.
func withDetails(st *status.Status, err error) *status.Status {
	var details []protoadapt.MessageV1
	var fe *order.FieldError
	if errors.As(err, &fe) {
		details = append(details, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: fe.Field, Description: fe.Msg}}})
	}
	var unpaid *postgres.UnpaidLimitError
	var coupon *postgres.CouponRefusedError
	info := &errdetails.ErrorInfo{Domain: ErrorDomain}
	switch {
	case errors.As(err, &coupon):
		// COUPON_EXHAUSTED, COUPON_PER_BUYER, COUPON_ENDED, ...
		info.Reason = "COUPON_" + strings.ToUpper(coupon.Reason)
	case errors.As(err, &unpaid):
		info.Reason = "UNPAID_LIMIT"
		info.Metadata = map[string]string{"max_orders": strconv.FormatInt(unpaid.Limits.Orders, 10), "max_units": strconv.FormatInt(unpaid.Limits.Units, 10)}
	default:
		for _, r := range reasons {
			if errors.Is(err, r.err) {
				info.Reason = r.reason
				break
			}
		}
	}
	var total *order.TotalChangedError
	if errors.As(err, &total) {
		info.Metadata = map[string]string{"total_minor": strconv.FormatInt(total.Total.Amount, 10), "currency": total.Total.Currency}
	}
	if info.Reason != "" {
		details = append(details, info)
	}
	if len(details) == 0 {
		return st
	}
	if d, derr := st.WithDetails(details...); derr == nil {
		return d
	}
	return st
}

// errorInterceptor applies the error table to every unary call.
func errorInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		if err != nil {
			return nil, ToStatus(ctx, log, err)
		}
		return resp, nil
	}
}

// streamErrorInterceptor applies the error table to every stream.
func streamErrorInterceptor(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if err := h(srv, ss); err != nil {
			return ToStatus(ss.Context(), log, err)
		}
		return nil
	}
}
