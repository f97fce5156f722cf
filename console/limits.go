package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// positiveInt reads a form's whole number above zero.
func positiveInt(v, what string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0, keyward.Errorf(keyward.EINVALID, "%s must be a whole number above 0", what)
	}
	return n, nil
}

// creditsForm reads credits from a form: "remaining" (0 or more) and,
// optionally, a refill of "refill_amount" every "refill_interval" (a
// duration, or monthly:DAY). The service checks the bounds.
func creditsForm(r *http.Request) (*keyward.Credits, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("remaining")), 10, 64)
	if err != nil || n < 0 {
		return nil, keyward.Errorf(keyward.EINVALID, "remaining credits must be a whole number, 0 or more")
	}
	cr := &keyward.Credits{Remaining: n}
	amount, interval := strings.TrimSpace(r.PostFormValue("refill_amount")), strings.TrimSpace(r.PostFormValue("refill_interval"))
	if amount == "" && interval == "" {
		return cr, nil
	}
	a, err := positiveInt(amount, "the refill amount")
	if err != nil {
		return nil, err
	}
	cr.Refill = &keyward.CreditRefill{Amount: a}
	if day, monthly := strings.CutPrefix(interval, "monthly:"); monthly {
		if cr.Refill.Day, err = strconv.Atoi(day); err != nil {
			return nil, keyward.Errorf(keyward.EINVALID, "a monthly refill is monthly:DAY, the day of the month from 1 to 31, such as monthly:15")
		}
		return cr, nil
	}
	d, err := time.ParseDuration(interval)
	if err != nil {
		return nil, keyward.Errorf(keyward.EINVALID, "the refill interval must be a duration such as 24h or 720h, or monthly:DAY such as monthly:15")
	}
	cr.Refill.Interval = keyward.Duration(d)
	return cr, nil
}

// meterForm reads the shared limits of an account or a user from a form:
// one rate limit ("limit_name", "limit", "window") and credits
// ("remaining"), each optional but not both absent.
func meterForm(r *http.Request) (keyward.MeterSet, error) {
	var m keyward.MeterSet
	if name := strings.TrimSpace(r.PostFormValue("limit_name")); name != "" || r.PostFormValue("limit") != "" {
		n, err := positiveInt(r.PostFormValue("limit"), "the limit")
		if err != nil {
			return m, err
		}
		d, err := time.ParseDuration(strings.TrimSpace(r.PostFormValue("window")))
		if err != nil {
			return m, keyward.Errorf(keyward.EINVALID, "the window must be a duration such as 1s, 1m or 1h")
		}
		m.RateLimits = []keyward.RateLimit{{Name: name, Limit: n, Window: keyward.Duration(d)}}
	}
	if strings.TrimSpace(r.PostFormValue("remaining")) != "" {
		cr, err := creditsForm(r)
		if err != nil {
			return m, err
		}
		m.Credits = cr
	}
	if m.RateLimits == nil && m.Credits == nil {
		return m, keyward.Errorf(keyward.EINVALID, "give a rate limit, credits or both")
	}
	return m, nil
}

// meterOf returns the shared limits of an account (userID empty) or a
// user, nil when there are none.
func (c *Console) meterOf(r *http.Request, accountID, userID string) (*keyward.Meter, error) {
	m, err := c.keys.Meter(r.Context(), accountID, userID)
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		return nil, nil
	}
	return m, err
}

// setMeter replaces or removes the shared limits of the account of the
// path, or of its user when the path names one, then goes back to its
// page.
func (c *Console) setMeter(remove bool) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, cl *caller) {
		accountID, userID := r.PathValue("id"), r.PathValue("uid")
		var err error
		if remove {
			err = c.keys.DeleteMeter(r.Context(), accountID, userID)
		} else {
			var m keyward.MeterSet
			if m, err = meterForm(r); err == nil {
				_, err = c.keys.SetMeter(r.Context(), accountID, userID, m)
			}
		}
		if err != nil {
			c.fail(w, r, cl, err)
			return
		}
		back := Path + "/accounts/" + url.PathEscape(accountID)
		if userID != "" {
			back += "/users/" + url.PathEscape(userID)
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
	}
}
