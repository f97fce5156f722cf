package httpapi

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

func (s *Server) createWebhook(ctx context.Context, _ *http.Request, in keyward.NewWebhookEndpoint) (*keyward.CreatedWebhookEndpoint, error) {
	return s.svc.Webhooks.CreateWebhookEndpoint(ctx, in)
}

// listWebhooks is GET /v1/webhooks[?account_id=..].
func (s *Server) listWebhooks(ctx context.Context, r *http.Request, _ noBody) (*keyward.WebhookEndpointList, error) {
	q, err := query(r, "account_id", "after", "limit")
	if err != nil {
		return nil, err
	}
	p, err := pageOf(q)
	if err != nil {
		return nil, err
	}
	return s.svc.Webhooks.WebhookEndpoints(ctx, keyward.WebhookEndpointFilter{AccountID: q.Get("account_id")}, p)
}

func (s *Server) getWebhook(ctx context.Context, r *http.Request, _ noBody) (*keyward.WebhookEndpoint, error) {
	return s.svc.Webhooks.WebhookEndpoint(ctx, r.PathValue("id"))
}

func (s *Server) updateWebhook(ctx context.Context, r *http.Request, in keyward.WebhookEndpointUpdate) (*keyward.WebhookEndpoint, error) {
	return s.svc.Webhooks.UpdateWebhookEndpoint(ctx, r.PathValue("id"), in)
}

func (s *Server) rotateWebhookSecret(ctx context.Context, r *http.Request, _ noBody) (*keyward.CreatedWebhookEndpoint, error) {
	return s.svc.Webhooks.RotateWebhookSecret(ctx, r.PathValue("id"))
}

func (s *Server) deleteWebhook(ctx context.Context, r *http.Request, _ noBody) (*struct{}, error) {
	return nil, s.svc.Webhooks.DeleteWebhookEndpoint(ctx, r.PathValue("id"))
}

// listWebhookDeliveries is GET /v1/webhooks/{id}/deliveries: the
// endpoint's delivery log, newest event first.
func (s *Server) listWebhookDeliveries(ctx context.Context, r *http.Request, _ noBody) (*keyward.WebhookDeliveryList, error) {
	q, err := query(r, "after", "limit")
	if err != nil {
		return nil, err
	}
	p, err := pageOf(q)
	if err != nil {
		return nil, err
	}
	return s.svc.Webhooks.WebhookDeliveries(ctx, r.PathValue("id"), p)
}

func (s *Server) retryWebhookDelivery(ctx context.Context, r *http.Request, _ noBody) (*keyward.WebhookDelivery, error) {
	return s.svc.Webhooks.RetryWebhookDelivery(ctx, r.PathValue("id"), r.PathValue("event_id"))
}
