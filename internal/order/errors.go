package order

import (
	"errors"
	"fmt"
)

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
	// ErrStoreKeyTaken means a new store's ids would carry the key another
	// store's ids carry (one chance in 2^62 a pair), so they could not be
	// routed to it.
	ErrStoreKeyTaken = errors.New("store key taken")
)

// FieldError is an ErrInvalid refusal of one field of the input: Field
// names it as the request does ("message.text", "amount.currency"), so
// that a client can show the error beside it (google.rpc.BadRequest).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return ErrInvalid.Error() + ": " + e.Field + ": " + e.Msg }

// Unwrap makes a FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// invalid returns a FieldError for field.
func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Reasons a client acts on, beside the error's code (google.rpc.ErrorInfo).
var (
	// ErrOfferOpen refuses a second offer while one is open.
	ErrOfferOpen = fmt.Errorf("%w: an offer is open", ErrIllegalTransition)
)

// TotalChangedError refuses a payment whose expected total is not the
// order's: Total is the total now, for the buyer to confirm.
type TotalChangedError struct {
	Expected, Total Money
}

func (e *TotalChangedError) Error() string {
	return fmt.Sprintf("%v: you expected %s but the order's total is now %s", ErrTotalMismatch, e.Expected, e.Total)
}

// Unwrap makes a TotalChangedError an ErrTotalMismatch.
func (e *TotalChangedError) Unwrap() error { return ErrTotalMismatch }
