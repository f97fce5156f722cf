package admin

import (
	"context"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// maxAccountIPRules bounds the rules of one account: every instance holds
// and recompiles all rules, so one tenant must not be able to slow every
// other tenant's verifications. Root's global rules are not bounded.
const maxAccountIPRules = 1000

// CreateIPRule stores a rule and applies it on this instance at once (other
// instances within their IP rule refresh interval). Root may create global
// rules and rules of any account; an account admin only rules of its own
// account; a user none.
func (s *Abuse) CreateIPRule(ctx context.Context, c keyward.IPRuleCreate) (*keyward.IPRule, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := checkIPRuleScope(id, c.AccountID, "create IP rules"); err != nil {
		return nil, err
	}
	if !c.Action.Valid() {
		return nil, keyward.Errorf(keyward.EINVALID, "action %q: use block or allow", c.Action)
	}
	cidr, err := keyward.ParsePrefix(c.CIDR)
	if err != nil {
		return nil, err
	}
	if err := validateName("reason", c.Reason, false); err != nil {
		return nil, err
	}
	now := s.utc()
	if c.ExpiresAt, err = futureExpiry(c.ExpiresAt, now); err != nil {
		return nil, err
	}
	if c.AccountID != "" && !isRoot(id) {
		existing, _, err := s.store.IPRules(ctx, keyward.IPRuleFilter{AccountID: c.AccountID}, keyward.Page{Limit: maxAccountIPRules})
		if err != nil {
			return nil, err
		}
		if len(existing) >= maxAccountIPRules {
			return nil, keyward.Errorf(keyward.ECONFLICT, "account %s has %d IP rules, the most an account admin may create: delete some, or ask root", c.AccountID, maxAccountIPRules)
		}
	}
	r := &keyward.IPRule{
		ID: apikey.NewID("ipr"), AccountID: c.AccountID, Action: c.Action, CIDR: cidr,
		Reason: c.Reason, ExpiresAt: c.ExpiresAt, CreatedAt: now, CreatedBy: id.KeyID,
		Automatic: c.Automatic,
	}
	details := map[string]any{"action": r.Action, "cidr": r.CIDR.String(), "reason": r.Reason, "expires_at": r.ExpiresAt}
	if r.Automatic {
		details["automatic"] = true
	}
	ch, err := s.audit(ctx, id, "ip_rule.create", "ip_rule", r.ID, r.AccountID, details)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateIPRule(ctx, ch, r); err != nil {
		return nil, err
	}
	s.ipRulesChanged(ctx)
	s.log.InfoContext(ctx, "ip rule created", "rule_id", r.ID, "action", r.Action, "cidr", r.CIDR, "account_id", r.AccountID, "by", id.KeyID)
	return r, nil
}

// IPRules lists the rules the caller may see: every rule for root (or those
// of f), the rules of its own account for an admin.
func (s *Abuse) IPRules(ctx context.Context, f keyward.IPRuleFilter, p keyward.Page) (*keyward.IPRuleList, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if f.Global && f.AccountID != "" {
		return nil, keyward.Errorf(keyward.EINVALID, "filter by account_id or global rules, not both")
	}
	switch {
	case isRoot(id):
	case id.Role == keyward.RoleAccountAdmin:
		if f.Global {
			return nil, keyward.Errorf(keyward.EFORBIDDEN, "only a root key may list global IP rules")
		}
		if f.AccountID != "" && f.AccountID != id.AccountID {
			return nil, notFound("account", f.AccountID)
		}
		f.AccountID = id.AccountID
	default:
		return nil, keyward.Errorf(keyward.EFORBIDDEN, "a user key may not list IP rules")
	}
	items, next, err := s.store.IPRules(ctx, f, p)
	if err != nil {
		return nil, err
	}
	return &keyward.IPRuleList{Items: items, Next: next}, nil
}

// DeleteIPRule deletes a rule the caller manages and applies the change.
func (s *Abuse) DeleteIPRule(ctx context.Context, ruleID string) error {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if id.Role == keyward.RoleUser {
		return keyward.Errorf(keyward.EFORBIDDEN, "a user key may not delete IP rules")
	}
	r, err := s.store.IPRule(ctx, ruleID)
	if err != nil {
		return err
	}
	if !isRoot(id) && r.AccountID != id.AccountID {
		return notFound("ip rule", ruleID)
	}
	ch, err := s.audit(ctx, id, "ip_rule.delete", "ip_rule", ruleID, r.AccountID, map[string]any{"action": r.Action, "cidr": r.CIDR.String()})
	if err != nil {
		return err
	}
	if _, err := s.store.DeleteIPRule(ctx, ch, ruleID); err != nil {
		return err
	}
	s.ipRulesChanged(ctx)
	s.log.InfoContext(ctx, "ip rule deleted", "rule_id", r.ID, "by", id.KeyID)
	return nil
}

// checkIPRuleScope allows root any scope and an admin its own account.
func checkIPRuleScope(id *keyward.Identity, accountID, action string) error {
	switch {
	case isRoot(id):
		return nil
	case id.Role == keyward.RoleAccountAdmin && accountID == "":
		return keyward.Errorf(keyward.EFORBIDDEN, "only a root key may %s that apply to every account: set account_id", action)
	case id.Role == keyward.RoleAccountAdmin && accountID != id.AccountID:
		return keyward.Errorf(keyward.EFORBIDDEN, "an account_admin key may %s only for its own account", action)
	case id.Role == keyward.RoleAccountAdmin:
		return nil
	}
	return keyward.Errorf(keyward.EFORBIDDEN, "a user key may not %s", action)
}

// ipRulesChanged makes the local engine apply the committed rules now.
func (s *Abuse) ipRulesChanged(ctx context.Context) {
	if s.rules == nil {
		return
	}
	if err := s.rules.ReloadIPRules(context.WithoutCancel(ctx)); err != nil {
		s.log.WarnContext(ctx, "applying IP rules failed; they apply at the next refresh", "err", err)
	}
}

// DeleteExpiredIPRule deletes an IP rule that expired, for retention. An
// expired rule applies nowhere, so no instance needs to reload.
func (s *Abuse) DeleteExpiredIPRule(ctx context.Context, r *keyward.IPRule) error {
	defer s.lock()()
	ch, err := s.audit(ctx, systemIdentity, "ip_rule.delete", "ip_rule", r.ID, r.AccountID,
		map[string]any{"reason": "retention", "action": r.Action, "cidr": r.CIDR.String(), "expires_at": r.ExpiresAt})
	if err != nil {
		return err
	}
	_, err = s.store.DeleteIPRule(ctx, ch, r.ID)
	return err
}
