package buyer

import (
	"context"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/status"

	buyerv1 "github.com/souk-dev/souk/gen/go/souk/buyer/v1"
	"github.com/souk-dev/souk/internal/order"
	"github.com/souk-dev/souk/internal/payflow"
	"github.com/souk-dev/souk/internal/payment"
	"github.com/souk-dev/souk/internal/protoconv"
	"github.com/souk-dev/souk/internal/server"
)

// methodOf reads the request's payment method (protovalidate made sure one is set).
func methodOf(card *buyerv1.Card, wallet *buyerv1.Wallet, bank *buyerv1.BankTransfer, later *buyerv1.PayLater) payflow.Method {
	switch {
	case later != nil:
		return payflow.Method{Kind: order.MethodPayLater, Account: later.Account}
	case wallet != nil:
		return payflow.Method{Kind: order.MethodWallet, Account: wallet.Account}
	case bank != nil:
		return payflow.Method{Kind: order.MethodBankTransfer, Account: bank.AccountNumber}
	}
	return payflow.Method{Kind: order.MethodCard, Card: payment.Card{
		Number: card.GetNumber(), ExpMonth: int(card.GetExpMonth()), ExpYear: int(card.GetExpYear()), CVC: card.GetCvc(),
	}}
}

// PayOrder pays one order.
func (s *buyerService) PayOrder(ctx context.Context, req *buyerv1.PayOrderRequest) (*buyerv1.PayOrderResponse, error) {
	o, a, err := s.pay.Pay(ctx, payflow.PayRequest{
		BuyerID: buyerID(ctx), OrderID: req.OrderId, Expected: protoconv.FromMoney(req.ExpectedTotal),
		Method: methodOf(req.GetCard(), req.GetWallet(), req.GetBankTransfer(), req.GetPayLater()), Key: req.IdempotencyKey,
	})
	if err != nil {
		return nil, err
	}
	return &buyerv1.PayOrderResponse{Order: protoconv.Order(o, true), Attempt: protoconv.Attempt(a)}, nil
}

// PayOrders pays several orders one after the other, each on its own.
func (s *buyerService) PayOrders(ctx context.Context, req *buyerv1.PayOrdersRequest) (*buyerv1.PayOrdersResponse, error) {
	orders := make([]payflow.OrderTotal, len(req.Orders))
	for i, op := range req.Orders {
		orders[i] = payflow.OrderTotal{OrderID: op.OrderId, Expected: protoconv.FromMoney(op.ExpectedTotal)}
	}
	outcomes, err := s.pay.PayMany(ctx, buyerID(ctx), req.IdempotencyKey, methodOf(req.GetCard(), req.GetWallet(), req.GetBankTransfer(), req.GetPayLater()), orders)
	if err != nil {
		return nil, err
	}
	resp := &buyerv1.PayOrdersResponse{}
	for i, out := range outcomes {
		r := &buyerv1.OrderPaymentResult{OrderId: orders[i].OrderID}
		if out.Err != nil {
			st := status.Convert(server.ToStatus(ctx, s.deps.Log, out.Err))
			r.Status = st.Proto()
			// The deprecated fields are still filled for older clients.
			r.ErrorCode, r.ErrorMessage = code.Code_name[int32(st.Code())], st.Message()
		} else {
			r.Order, r.Attempt = protoconv.Order(out.Order, true), protoconv.Attempt(out.Attempt)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

// VerifyPayment gives the provider the buyer's one-time code.
func (s *buyerService) VerifyPayment(ctx context.Context, req *buyerv1.VerifyPaymentRequest) (*buyerv1.VerifyPaymentResponse, error) {
	o, a, err := s.pay.Verify(ctx, buyerID(ctx), req.OrderId, req.AttemptId, req.Code)
	if err != nil {
		return nil, err
	}
	return &buyerv1.VerifyPaymentResponse{Order: protoconv.Order(o, true), Attempt: protoconv.Attempt(a)}, nil
}

// ListRefunds pages the caller's refunds.
func (s *buyerService) ListRefunds(ctx context.Context, req *buyerv1.ListRefundsRequest) (*buyerv1.ListRefundsResponse, error) {
	rs, next, err := s.deps.DB.ListRefunds(ctx, buyerID(ctx), protoconv.PageSize(req.PageSize, 20), req.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &buyerv1.ListRefundsResponse{NextPageToken: next}
	for _, r := range rs {
		resp.Refunds = append(resp.Refunds, protoconv.Refund(r.OrderID, r.Refund))
	}
	return resp, nil
}
