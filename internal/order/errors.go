package order

import "errors"

// The domain's sentinel errors. Callers wrap them with detail; the server
// maps each to one gRPC code in one table (internal/server).
var (
	// ErrInvalid means the request breaks a rule of the domain (an unknown
	// item, a currency mismatch, an amount out of range).
	ErrInvalid = errors.New("invalid")
	// ErrNotFound means the order does not exist, or the caller may not see it.
	ErrNotFound = errors.New("not found")
	// ErrIllegalTransition means the order's status does not allow the action.
	ErrIllegalTransition = errors.New("not allowed in the order's status")
	// ErrTotalMismatch means the buyer's expected total is not the order's total.
	ErrTotalMismatch = errors.New("total changed")
	// ErrPaymentInProgress means a payment attempt is open on the order.
	ErrPaymentInProgress = errors.New("a payment is in progress")
	// ErrIdempotencyKeyReused means an idempotency key came back with other parameters.
	ErrIdempotencyKeyReused = errors.New("idempotency key reused with other parameters")
	// ErrConflict means the order changed under a concurrent writer; retry.
	ErrConflict = errors.New("concurrent update")
	// ErrAlreadyFinal means an outcome arrived for something that already
	// has one (a provider event delivered twice); nothing changes.
	ErrAlreadyFinal = errors.New("already final")
	// ErrNotDue means a deadline fired before it was due, or no longer applies.
	ErrNotDue = errors.New("deadline not due")
)
