package keyward

import (
	"context"
	"slices"
	"time"
)

// WebhookEndpoint is a URL that events are delivered to, signed with the
// endpoint's secret by the Standard Webhooks scheme.
type WebhookEndpoint struct {
	ID string `json:"id"`
	// AccountID scopes the endpoint: it receives the events of that
	// account. Empty for a global endpoint (root only), which receives
	// every event.
	AccountID   string `json:"account_id,omitempty"`
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	// Events lists the event types the endpoint receives; empty means all.
	Events []string `json:"events"`
	// SealedSecret is the signing secret ("whsec_...") encrypted with
	// master key SecretVersion; additional data WebhookSecretAD(ID). The
	// clear secret is shown once, when the endpoint is created or its
	// secret rotated.
	SealedSecret  []byte `json:"-"`
	SecretVersion int    `json:"-"`
	// Disabled stops deliveries to the endpoint; DisabledReason says why
	// ("410 Gone from the endpoint", or set by an admin).
	Disabled       bool      `json:"disabled"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	CreatedBy      string    `json:"created_by,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Wants reports whether the endpoint receives ev: an endpoint of ev's
// account or a global one, subscribed to ev's type. A disabled endpoint
// still wants events: they wait for it to be enabled again.
func (e *WebhookEndpoint) Wants(ev *Event) bool {
	if e.AccountID != "" && e.AccountID != ev.AccountID {
		return false
	}
	return len(e.Events) == 0 || slices.Contains(e.Events, ev.Type)
}

// WebhookSecretAD is the additional data of an endpoint's sealed secret:
// it opens only as the secret of that endpoint.
func WebhookSecretAD(endpointID string) []byte {
	return []byte("webhook_endpoint\x00" + endpointID)
}

// DeliveryState is where a delivery stands.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryDelivered DeliveryState = "delivered"
	DeliveryFailed    DeliveryState = "failed"
)

// WebhookDelivery is one event on its way to one endpoint. It is the
// delivery log's row: Attempts, LastStatus and LastError tell how it went.
type WebhookDelivery struct {
	EventID    string        `json:"event_id"`
	EventType  string        `json:"event_type"`
	EndpointID string        `json:"endpoint_id"`
	State      DeliveryState `json:"state"`
	Attempts   int           `json:"attempts"`
	// NextAttemptAt is when a pending delivery is tried next.
	NextAttemptAt time.Time `json:"next_attempt_at"`
	// LastStatus is the HTTP status of the last attempt, 0 if it got no
	// response; LastError says what went wrong with it.
	LastStatus int       `json:"last_status,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`

	// Event, Endpoint and LeaseUntil are filled by ClaimDeliveries for
	// the sender; LeaseUntil is the claim's lease, which FinishDelivery
	// must name.
	Event      *Event           `json:"-"`
	Endpoint   *WebhookEndpoint `json:"-"`
	LeaseUntil time.Time        `json:"-"`
}

// DeliveryOutcome is the result of one delivery attempt, for
// FinishDelivery.
type DeliveryOutcome struct {
	EventID    string
	EndpointID string
	// LeaseUntil is the lease of the claim the attempt was made under
	// (WebhookDelivery.LeaseUntil).
	LeaseUntil time.Time
	// Time is when the attempt started; Duration how long it took.
	Time     time.Time
	Duration time.Duration
	// Status is the HTTP status, 0 without a response; Error what went
	// wrong, empty on success.
	Status int
	Error  string
	// State is the delivery's new state; NextAttemptAt when a pending one
	// is tried again.
	State         DeliveryState
	NextAttemptAt time.Time
	// DisableEndpoint, when not empty, disables the endpoint with this
	// reason (it answered 410 Gone).
	DisableEndpoint string
}

// WebhookEndpointFilter narrows an endpoint list. Empty fields match
// everything.
type WebhookEndpointFilter struct {
	AccountID string
}

// WebhookStore is the part of Store that holds webhook endpoints, the
// outbox of events and the deliveries.
type WebhookStore interface {
	// CreateWebhookEndpoint inserts e. ENOTFOUND if its account does not
	// exist, ECONFLICT if the id is taken.
	CreateWebhookEndpoint(ctx context.Context, ch Change, e *WebhookEndpoint) error
	// WebhookEndpoint returns the endpoint with id. ENOTFOUND if none.
	WebhookEndpoint(ctx context.Context, id string) (*WebhookEndpoint, error)
	// WebhookEndpoints lists the endpoints matching f by id.
	WebhookEndpoints(ctx context.Context, f WebhookEndpointFilter, p Page) (endpoints []*WebhookEndpoint, next string, err error)
	// UpdateWebhookEndpoint loads the endpoint, applies fn and saves the
	// result in one transaction. The id and account never change.
	UpdateWebhookEndpoint(ctx context.Context, ch Change, id string, fn func(*WebhookEndpoint) error) (*WebhookEndpoint, error)
	// DeleteWebhookEndpoint deletes the endpoint with its deliveries and
	// returns it. ENOTFOUND if none.
	DeleteWebhookEndpoint(ctx context.Context, ch Change, id string) (*WebhookEndpoint, error)

	// AppendEvents writes events that change nothing else to the outbox
	// (a quota exhausted on the hot path). Every other write method writes
	// the events of its Change in its own transaction. EINVALID, and nothing written, if one fails Validate.
	AppendEvents(ctx context.Context, events []*Event) error
	// DispatchEvents fans up to limit undispatched events out, oldest
	// first: one pending delivery, due at now, per endpoint that Wants the
	// event, and marks them dispatched, in one transaction. An event
	// reaches an endpoint at most once however often it runs, also when
	// instances run it at the same time. It returns how many events it
	// dispatched.
	DispatchEvents(ctx context.Context, now time.Time, limit int) (int, error)
	// ClaimDeliveries leases up to limit pending deliveries due at now,
	// of enabled endpoints, oldest first, until now+lease (truncated to
	// the microsecond): no other claim returns them before then (so an
	// instance that dies mid-delivery only delays it). Event, Endpoint and
	// LeaseUntil are filled.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*WebhookDelivery, error)
	// FinishDelivery records an attempt in the delivery log and sets the
	// delivery's state, releasing its lease; with DisableEndpoint it also
	// disables the endpoint. It changes nothing and returns ENOTFOUND
	// unless the delivery is pending under the lease o.LeaseUntil names:
	// it is gone (its endpoint deleted), or its lease ran out and another
	// claim took it over.
	FinishDelivery(ctx context.Context, o DeliveryOutcome) error
	// WebhookDeliveries lists the deliveries to an endpoint, newest event
	// first; the cursor is the last event id of the previous page.
	WebhookDeliveries(ctx context.Context, endpointID string, p Page) (deliveries []*WebhookDelivery, next string, err error)
	// RetryDelivery makes a delivered or failed delivery pending again,
	// due at now, so the sender attempts it once more (its attempts go on
	// counting), and returns it. ENOTFOUND if there is no such delivery,
	// ECONFLICT if it is pending already.
	RetryDelivery(ctx context.Context, ch Change, endpointID, eventID string, now time.Time) (*WebhookDelivery, error)
}

// WebhookEndpointUpdate changes an endpoint; nil fields stay as they are.
type WebhookEndpointUpdate struct {
	URL         *string   `json:"url,omitempty"`
	Description *string   `json:"description,omitempty"`
	Events      *[]string `json:"events,omitempty"`
	// Disabled enables (false) or disables (true) the endpoint; enabling
	// clears DisabledReason.
	Disabled *bool `json:"disabled,omitempty"`
}

// NewWebhookEndpoint is what creating an endpoint takes.
type NewWebhookEndpoint struct {
	// AccountID scopes the endpoint; empty for a global one (root only),
	// and filled with the caller's account for account admins.
	AccountID   string   `json:"account_id,omitempty"`
	URL         string   `json:"url"`
	Description string   `json:"description,omitempty"`
	Events      []string `json:"events,omitempty"`
}

// CreatedWebhookEndpoint is a new endpoint with its signing secret, shown
// this once.
type CreatedWebhookEndpoint struct {
	Endpoint *WebhookEndpoint `json:"endpoint"`
	// Secret is the signing secret, "whsec_" and base64.
	Secret string `json:"secret"`
}

// WebhookEndpointList is one page of endpoints.
type WebhookEndpointList struct {
	Items []*WebhookEndpoint `json:"items"`
	Next  string             `json:"next,omitempty"`
}

// WebhookDeliveryList is one page of an endpoint's delivery log.
type WebhookDeliveryList struct {
	Items []*WebhookDelivery `json:"items"`
	Next  string             `json:"next,omitempty"`
}

// WebhookService manages webhook endpoints: root manages all, an account
// admin those of its account; users may not.
type WebhookService interface {
	CreateWebhookEndpoint(ctx context.Context, n NewWebhookEndpoint) (*CreatedWebhookEndpoint, error)
	WebhookEndpoint(ctx context.Context, id string) (*WebhookEndpoint, error)
	WebhookEndpoints(ctx context.Context, f WebhookEndpointFilter, p Page) (*WebhookEndpointList, error)
	UpdateWebhookEndpoint(ctx context.Context, id string, u WebhookEndpointUpdate) (*WebhookEndpoint, error)
	// RotateWebhookSecret replaces the endpoint's secret and returns the
	// new one, shown this once.
	RotateWebhookSecret(ctx context.Context, id string) (*CreatedWebhookEndpoint, error)
	DeleteWebhookEndpoint(ctx context.Context, id string) error
	WebhookDeliveries(ctx context.Context, id string, p Page) (*WebhookDeliveryList, error)
	// RetryWebhookDelivery sends a delivery of the endpoint's log again:
	// the sender attempts it once more, as soon as it can.
	RetryWebhookDelivery(ctx context.Context, id, eventID string) (*WebhookDelivery, error)
}
