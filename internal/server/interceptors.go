package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// RequestIDHeader carries a request id from clients (and the gateway) into
// logs; one is made up when the caller sends none.
const RequestIDHeader = "x-request-id"

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func withRequestID(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	id := ""
	if v := md.Get(RequestIDHeader); len(v) > 0 && len(v[0]) <= 128 {
		id = v[0]
	}
	if id == "" {
		id = uuid.NewString()
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))
	return context.WithValue(ctx, requestIDKey{}, id)
}

// contextHandler adds the request id of the context to every log record.
type contextHandler struct{ slog.Handler }

// Handle adds request_id when the context has one, and the trace and span
// ids of the span it is in.
func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around the derived handler.
func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around the derived handler.
func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// NewLogger returns a JSON logger that adds each record's request id.
func NewLogger(w interface{ Write([]byte) (int, error) }, level slog.Level) *slog.Logger {
	return slog.New(contextHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

// logInterceptor gives every call a request id and logs it with its code
// and duration.
func logInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		ctx = withRequestID(ctx)
		start := time.Now()
		resp, err := h(ctx, req)
		code := status.Code(err)
		level := slog.LevelInfo
		if code == codes.Internal || code == codes.Unknown {
			level = slog.LevelError
		}
		if !strings.HasPrefix(info.FullMethod, "/grpc.health.") {
			log.Log(ctx, level, "rpc", "method", info.FullMethod, "code", code.String(), "duration_ms", time.Since(start).Milliseconds())
		}
		return resp, err
	}
}

// streamLogInterceptor logs streams when they end.
func streamLogInterceptor(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		ctx := withRequestID(ss.Context())
		start := time.Now()
		err := h(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
		log.InfoContext(ctx, "stream", "method", info.FullMethod, "code", status.Code(err).String(), "duration_ms", time.Since(start).Milliseconds())
		return err
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *wrappedStream) Context() context.Context { return s.ctx }

// validateInterceptor checks every request against its protovalidate rules
// and answers INVALID_ARGUMENT with a BadRequest detail naming each field.
func validateInterceptor(v protovalidate.Validator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if msg, ok := req.(proto.Message); ok {
			if err := v.Validate(msg); err != nil {
				return nil, validationStatus(err)
			}
		}
		return h(ctx, req)
	}
}

// validateStreamInterceptor checks every message a stream receives, as
// validateInterceptor does for unary calls.
func validateStreamInterceptor(v protovalidate.Validator) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return h(srv, &validatedStream{ServerStream: ss, v: v})
	}
}

type validatedStream struct {
	grpc.ServerStream
	v protovalidate.Validator
}

func (s *validatedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if msg, ok := m.(proto.Message); ok {
		if err := s.v.Validate(msg); err != nil {
			return validationStatus(err)
		}
	}
	return nil
}

func validationStatus(err error) error {
	verr, ok := err.(*protovalidate.ValidationError)
	if !ok {
		return status.Error(codes.InvalidArgument, "invalid request")
	}
	br := &errdetails.BadRequest{}
	msgs := make([]string, 0, len(verr.Violations))
	for _, v := range verr.Violations {
		field := protovalidate.FieldPathString(v.Proto.GetField())
		if field == "" {
			field = "request"
		}
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: field, Description: v.Proto.GetMessage()})
		msgs = append(msgs, field+": "+v.Proto.GetMessage())
	}
	st := status.New(codes.InvalidArgument, "invalid request: "+strings.Join(msgs, "; "))
	if withDetails, err := st.WithDetails(br); err == nil {
		st = withDetails
	}
	return st.Err()
}
