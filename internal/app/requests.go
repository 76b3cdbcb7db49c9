package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/souk-dev/souk/internal/auth"
	"github.com/souk-dev/souk/internal/postgres"
)

// WithRequestID returns ctx carrying a client's request id for the order
// change the call makes (postgres.WithRequest): scoped to the caller and the
// call, with a hash of the request's other fields, so that a retry with the
// same id changes nothing twice and one with other fields is refused. An
// empty id leaves ctx as it is.
func WithRequestID(ctx context.Context, id string, req proto.Message) context.Context {
	if id == "" {
		return ctx
	}
	who, _ := auth.FromContext(ctx)
	method, _ := grpc.Method(ctx)
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	sum := sha256.Sum256(b)
	return postgres.WithRequest(ctx, postgres.Request{Scope: string(who.Role) + ":" + who.Subject + ":" + method, ID: id,
		Fingerprint: hex.EncodeToString(sum[:])})
}

// requestNamespace names what a request creates (a message) after the request.
var requestNamespace = uuid.MustParse("7c0f5a4e-2b1d-4c8e-9a53-3f0e6d1b2a47")

// RequestScopedID returns an id for what a request creates: the same for a
// retry of a request with an id, so that the retry finds what the first
// made; a new one otherwise.
func RequestScopedID(ctx context.Context, id string) string {
	if id == "" {
		return uuid.NewString()
	}
	who, _ := auth.FromContext(ctx)
	method, _ := grpc.Method(ctx)
	return uuid.NewSHA1(requestNamespace, []byte(string(who.Role)+":"+who.Subject+":"+method+"\x00"+id)).String()
}
