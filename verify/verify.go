// Package verify is keyward's verification engine, the hot path of every
// authenticated request: parse the key and its checksum, hash it with the
// current pepper, find it in an in-process cache (positive entries with a TTL,
// their memory bounded by Config.MaxBytes with S3-FIFO eviction, and a
// bounded set of negative entries), load it from the store on a miss
// with concurrent misses for one key collapsed into one lookup, then decide
// on its status, the permissions (a list, a query) and the role the request
// needs, the key's rate limits
// and its credits. Usage (last_used_at) is recorded asynchronously in
// batches, and outcomes are reported to a keyward.SignalSink (abuse
// detection) off the hot path.
//
// A cache hit allocates nothing and costs little more than the HMAC of the
// key (see BenchmarkVerifyCacheHit beside BenchmarkHMACKey; what a rate limit
// and a signal sink add, BenchmarkVerifyCacheHitWith measures). Mutations
// reach the cache through keyward.KeyObserver, which the Engine implements;
// the cache TTL is the backstop for a lost notification. When the store is
// down, a cached key keeps verifying for up to Config.MaxStale after it was
// last read from the store, then answers UNAVAILABLE, as a miss does at once.
//
// A global block made by hand refuses every request from its network
// before any parsing; an automatic one (brute-force blocking) lets a key
// that verifies VALID through and bounds the store lookups the network can
// cause (see blocked.go).
package verify

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/permission"
	"github.com/keyward/keyward/ratelimit"
	"github.com/keyward/keyward/tracing"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
)

// KeyLoader is the part of keyward.Store the engine uses.
type KeyLoader interface {
	// KeyByHash returns the key with hash h, with AccountDisabled filled;
	// ENOTFOUND if none, EUNAVAILABLE (or any other error) if the store
	// cannot answer.
	KeyByHash(ctx context.Context, h keyward.KeyHash) (*keyward.Key, error)
	// TouchKeys raises last_used_at of each key to the given time.
	TouchKeys(ctx context.Context, uses []keyward.KeyUse) error
}

var _ KeyLoader = keyward.Store(nil)

// Defaults of Config.
const (
	DefaultCacheTTL           = 30 * time.Second
	DefaultNegativeTTL        = 10 * time.Second
	DefaultMaxNegative        = 100_000
	DefaultUsageFlushInterval = time.Second
	DefaultLoadTimeout        = 2 * time.Second
)

// Config configures an Engine. Zero values take the defaults.
type Config struct {
	// Store loads keys on a cache miss and records usage. Required.
	Store KeyLoader
	// Hasher hashes keys: the current pepper first, then older versions on
	// a miss. Required.
	Hasher *apikey.Hasher
	// CacheTTL is how long a found key is served from the cache before it
	// is reloaded. Invalidation (KeyObserver) is immediate; the TTL is the
	// backstop if a notification is lost. Default DefaultCacheTTL.
	CacheTTL time.Duration
	// NegativeTTL is how long "no such key" is remembered. Default
	// DefaultNegativeTTL.
	NegativeTTL time.Duration
	// MaxNegative bounds the number of negative entries; when full, an
	// arbitrary one is evicted. Default DefaultMaxNegative.
	MaxNegative int
	// MaxBytes bounds the memory of the cached keys, as the cache
	// estimates it: each entry, its strings and what few keys have beyond
	// them (meta, limits, credits...), its map slot and eviction queue
	// item. Shared permission lists and negative entries are not counted
	// (MaxNegative bounds the latter). Beyond it, keys are evicted by
	// S3-FIFO, which keeps the keys in frequent use (see evict.go); the
	// bound is split over the cache's 256 shards, each holding at least
	// one key. Default DefaultMaxBytes().
	MaxBytes int64
	// UsageFlushInterval is how often last_used_at is written, in one
	// batch. Default DefaultUsageFlushInterval.
	UsageFlushInterval time.Duration
	// MaxStale bounds how old a cached key may be, counted from when it
	// was last read from the store, while reloading it fails (the store
	// cannot be reached): past it the key answers UNAVAILABLE until a
	// reload succeeds. It is at least CacheTTL; default CacheTTL, so a key
	// is never served from a read older than its TTL, outage or not.
	MaxStale time.Duration
	// LoadTimeout bounds one store lookup on a cache miss, shared by every
	// request waiting on it, and one load of the IP rules. Default
	// DefaultLoadTimeout.
	LoadTimeout time.Duration
	// IPRules loads the IP rules to enforce. Nil: Store, if it implements
	// IPRuleLoader (keyward.Store does); otherwise no IP rules apply (key
	// allow lists still do).
	IPRules IPRuleLoader
	// IPRuleRefresh is how often the IP rules are reloaded. The instance
	// that changes a rule applies it at once (ReloadIPRules); other
	// instances sharing the store apply it within this interval. Default
	// DefaultIPRuleRefresh.
	IPRuleRefresh time.Duration
	// Imports finds and adopts keys imported as SHA-256 digests (see
	// imports.go). Nil: Store, if it implements ImportLoader (keyward.Store
	// does); otherwise imported keys are not looked up.
	Imports ImportLoader
	// ImportRefresh is how often the store's import counts are reloaded.
	// The instance that imports keys applies them at once
	// (ReloadImports); other instances sharing the store within this
	// interval. Default DefaultImportRefresh.
	ImportRefresh time.Duration
	// Limiter decides the keys' rate limits. Default: a ratelimit.Local
	// with its default bound, exact for this instance alone (every
	// instance admits a key's whole limit); instances that share a store
	// share limits through a redislimit.Limiter.
	Limiter ratelimit.Limiter
	// Credits holds the live credits of keys and spends them. Nil: no
	// ledger, and a key with credits answers UNAVAILABLE (fail closed:
	// its quota cannot be enforced), which is logged once.
	Credits keyward.CreditLedger
	// Signals receives the outcomes abuse detection needs (see Verify).
	// Nil: none are reported, and the hot path does none of that work.
	Signals keyward.SignalSink
	// Now is the clock deciding expiry, revocation, cache TTLs, rate
	// limits and credit refills. Default time.Now.
	Now func() time.Time
	// Logger receives store errors and flush failures, never a raw key.
	// Default slog.Default(); the engine adds component=verify.
	Logger *slog.Logger
	// TracerProvider traces the verifications of sampled requests (see
	// trace.go). Nil or a no-op provider: none, and the hot path does no
	// tracing work beyond one nil check.
	TracerProvider trace.TracerProvider
}

// Request is one verification.
type Request struct {
	// Key is the raw credential presented by the client.
	Key string
	// Permissions the request needs; the key must hold all of them (a
	// held wildcard covers them: permission.Covers).
	Permissions []string
	// Query, when set, is a permission query the key must satisfy too
	// (parse it once: permission.Cache, or at startup).
	Query *permission.Query
	// Role, when set, is the least role the key must have (Role.Covers),
	// or a named role it must hold (keyward.Key.HasRole).
	Role keyward.Role
	// Agent names the agent acting with the key; it is echoed in the
	// identity and grants nothing.
	Agent string
	// IP is the client address, checked against the IP rules and the
	// key's allow list. An unknown (zero) address matches no network: no
	// block rule refuses it, and an allow list (global, the account's or
	// the key's) refuses it with IP_NOT_ALLOWED.
	IP netip.Addr
	// Limits names the key's rate limits the call counts against, manual
	// ones included; empty: all of them but the manual ones
	// (keyward.RateLimit.Manual). A name the key does not have is ignored,
	// not an error (a service names the limits some of its keys carry), so
	// a call that names none of the key's limits counts against none.
	Limits []string
	// ManualLimits names manual limits the call counts against besides
	// those Limits selects (keyward.RateLimit.Counts).
	ManualLimits []string
	// Cost is what the call spends from each of those limits and from the
	// key's credits; 0 means 1. It must be between 0 and
	// keyward.MaxVerificationCost (NewRequest checks it); Verify answers
	// UNAVAILABLE for any other cost, clamping nothing. A cost above a
	// limit's Limit never fits that limit: RATE_LIMITED.
	Cost int64
	// Environment, when set, is the environment the key must be in: a
	// key of another answers WRONG_ENVIRONMENT (after its status and
	// allow list, before its permissions).
	Environment string
	// Account, when set, scopes the verification to that account's keys:
	// any other key answers NOT_FOUND before anything about it is
	// checked or spent (a tenant's verifier must not spend another
	// tenant's limits, nor learn its key's state). The IP of a scoped
	// request is the verifier's assertion: it is checked against the IP
	// rules, but signals do not carry it, so it never counts towards
	// brute-force blocking or triggers an action against an address.
	Account string
	// Unmetered authenticates without counting against the key's rate
	// limits or spending its credits: the admin API's own authentication,
	// which meters nothing of the protected service.
	Unmetered bool
}

// Result is the outcome of a verification.
type Result struct {
	// Decision is VALID, or why the key is refused.
	Decision keyward.Decision
	// Agent is Request.Agent.
	Agent string
	// CreditsRemaining is what the key's credits hold after the call,
	// when HasCredits.
	CreditsRemaining int64
	// HasCredits says the key has credits and the call reached them
	// (VALID or USAGE_EXCEEDED).
	HasCredits bool
	// LimitLevel, with RATE_LIMITED or USAGE_EXCEEDED, is the level whose
	// limits or credits refused the call.
	LimitLevel keyward.LimitLevel

	// key is the cache entry of the key found, nil if none (see Key).
	key *entry
	// need is what the request asked of the key, kept when the key
	// lacked it (INSUFFICIENT_PERMISSIONS) so that VerifyResult can say
	// what was missing.
	need need

	// The decisions of RateLimits: the first inlineLimits in limits, all
	// of them in moreLimits when there are more.
	limits     [inlineLimits]ratelimit.Decision
	nLimits    int
	moreLimits []ratelimit.Decision
}

// need is what a request asked of a key beyond its validity.
type need struct {
	perms []string
	query *permission.Query
	role  keyward.Role
}

// Identity returns who the key speaks for, or nil if no key was found.
// Callers that let a request through must check Decision first. Its
// permissions are shared with the cache: read-only.
func (r Result) Identity() *keyward.Identity {
	if r.key == nil {
		return nil
	}
	return r.key.identity(r.Agent)
}

// KeyID returns the id of the key found, whatever the decision, or "" if
// no key was found (see Key).
func (r Result) KeyID() string {
	if r.key == nil {
		return ""
	}
	return r.key.keyID()
}

// Key returns the key found, whatever the decision, or nil unless the key
// was found (MALFORMED, NOT_FOUND, and UNAVAILABLE before the key could be
// read; an UNAVAILABLE of the rate limits or credits names it). It is the
// key as the cache holds it: the fields a verification and its result read
// (id, owner, role, permissions, meta and secret metadata, expiry and
// revocation, disabled flags, IP allow list, environment, rate limits,
// meter and credits); its name, start, prefix, hash, pepper version, creator,
// rotation and times of creation, update and last use are zero. Each call
// returns a new Key (one allocation: Verify and a cache hit make none)
// whose slices and pointers are shared with the cache: read-only.
func (r Result) Key() *keyward.Key {
	if r.key == nil {
		return nil
	}
	return r.key.key()
}

// Engine verifies keys. It is safe for concurrent use. Close it to stop its
// background goroutine and flush pending usage.
type Engine struct {
	store KeyLoader
	// keys is store as key lookups read it: through freshLoader when the
	// store reads replicas.
	keys      hashFinder
	changes   *changeLog
	hasher    *apikey.Hasher
	now       func() time.Time
	realClock bool // now is time.Now: Verify reads the clock as wallBase says
	// wallBase is a reading of time.Now, renewed every second by run:
	// with the real clock, Verify takes the time as wallBase plus the
	// monotonic clock's progress since, which reads only the monotonic
	// clock, and a step of the wall clock shows within a second.
	wallBase    atomic.Pointer[time.Time]
	log         *slog.Logger
	ttl         atomic.Int64 // nanoseconds; SetCacheTTL changes it
	baseTTL     int64        // Config.CacheTTL, which SetCacheTTL(0) restores
	maxStale    int64        // Config.MaxStale, nanoseconds
	negTTL      int64
	maxNeg      int64
	loadTimeout time.Duration
	interval    time.Duration

	ipLoader  IPRuleLoader
	ipRefresh time.Duration
	ipMu      sync.Mutex // serialises reloads, so an older load never wins
	ipRules   atomic.Pointer[ipMatcher]
	// ipCompiling lets one request at a time rebuild the matcher when a
	// rule expires.
	ipCompiling atomic.Bool

	imports       ImportLoader
	importRefresh time.Duration
	importMu      sync.Mutex // serialises ReloadImports
	importPending int64      // the last count read, under importMu
	importState   atomic.Pointer[importState]

	limiter ratelimit.Limiter
	credits keyward.CreditLedger
	signals keyward.SignalSink
	tracer  trace.Tracer // nil: tracing is off
	// noLedger logs, once, that a key with credits met no ledger; warned
	// throttles the warnings of a failing limiter or ledger.
	noLedger sync.Once
	warned   atomic.Int64

	cache    cache
	interner interner
	// blockedLookups bounds the store lookups of automatically blocked
	// networks (blocked.go).
	blockedLookups lookupBudgets
	group          singleflight.Group
	usage          usage
	m              *metrics

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ keyward.KeyObserver = (*Engine)(nil)

// New returns an Engine and starts its background goroutine, which flushes
// usage and sweeps idle cache entries.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, keyward.Errorf(keyward.EINVALID, "verify: Config.Store is required")
	}
	if cfg.Hasher == nil {
		return nil, keyward.Errorf(keyward.EINVALID, "verify: Config.Hasher is required")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"CacheTTL", &cfg.CacheTTL, DefaultCacheTTL},
		{"NegativeTTL", &cfg.NegativeTTL, DefaultNegativeTTL},
		{"UsageFlushInterval", &cfg.UsageFlushInterval, DefaultUsageFlushInterval},
		{"LoadTimeout", &cfg.LoadTimeout, DefaultLoadTimeout},
		{"IPRuleRefresh", &cfg.IPRuleRefresh, DefaultIPRuleRefresh},
		{"ImportRefresh", &cfg.ImportRefresh, DefaultImportRefresh},
	} {
		switch {
		case *d.v < 0:
			return nil, keyward.Errorf(keyward.EINVALID, "verify: Config.%s is %v; it must be positive (or zero for the default %v)", d.name, *d.v, d.def)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	switch {
	case cfg.MaxStale == 0:
		cfg.MaxStale = cfg.CacheTTL
	case cfg.MaxStale < cfg.CacheTTL:
		return nil, keyward.Errorf(keyward.EINVALID, "verify: Config.MaxStale is %v; it must be at least CacheTTL (%v), or zero for CacheTTL", cfg.MaxStale, cfg.CacheTTL)
	}
	switch {
	case cfg.MaxNegative < 0:
		return nil, keyward.Errorf(keyward.EINVALID, "verify: Config.MaxNegative is %d; it must be positive (or zero for the default %d)", cfg.MaxNegative, DefaultMaxNegative)
	case cfg.MaxNegative == 0:
		cfg.MaxNegative = DefaultMaxNegative
	}
	switch {
	case cfg.MaxBytes < 0:
		return nil, keyward.Errorf(keyward.EINVALID, "verify: Config.MaxBytes is %d; it must be positive (or zero for the default, a quarter of the memory available)", cfg.MaxBytes)
	case cfg.MaxBytes == 0:
		cfg.MaxBytes = DefaultMaxBytes()
	}
	realClock := cfg.Now == nil
	if realClock {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IPRules == nil {
		cfg.IPRules, _ = cfg.Store.(IPRuleLoader)
	}
	if cfg.Imports == nil {
		cfg.Imports, _ = cfg.Store.(ImportLoader)
	}
	if cfg.Limiter == nil {
		cfg.Limiter = ratelimit.NewLocal(ratelimit.LocalOptions{})
	}
	e := &Engine{
		limiter:     cfg.Limiter,
		credits:     cfg.Credits,
		signals:     cfg.Signals,
		tracer:      tracing.Tracer(cfg.TracerProvider),
		ipLoader:    cfg.IPRules,
		ipRefresh:   cfg.IPRuleRefresh,
		store:       cfg.Store,
		hasher:      cfg.Hasher,
		now:         cfg.Now,
		realClock:   realClock,
		log:         cfg.Logger.With("component", "verify"),
		baseTTL:     int64(cfg.CacheTTL),
		maxStale:    int64(cfg.MaxStale),
		negTTL:      int64(cfg.NegativeTTL),
		maxNeg:      int64(cfg.MaxNegative),
		loadTimeout: cfg.LoadTimeout,
		interval:    cfg.UsageFlushInterval,
		m:           newMetrics(),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	e.keys, e.changes = cfg.Store, newChangeLog(cfg.Store)
	if e.changes.window > 0 {
		e.keys = freshLoader{store: cfg.Store, changes: e.changes}
	}
	e.ttl.Store(e.baseTTL)
	e.rebase()
	e.cache.init(cfg.MaxBytes)
	if err := e.ReloadIPRules(context.Background()); err != nil {
		// Until a load succeeds, every verification answers UNAVAILABLE
		// (see verify); the background goroutine keeps trying.
		e.log.Warn("loading IP rules failed; verifications answer UNAVAILABLE until they load", "err", err)
	}
	e.imports, e.importRefresh = cfg.Imports, cfg.ImportRefresh
	e.importState.Store(&unknownImports)
	if err := e.ReloadImports(context.Background()); err != nil {
		// Until a load succeeds, imported keys may exist: tokens of any
		// format are looked up.
		e.log.Warn("counting imported keys failed; every token is looked up until they are counted", "err", err)
	}
	go e.run(cfg.CacheTTL)
	return e, nil
}

// Verify decides whether req.Key may make a request needing
// req.Permissions, and spends req.Cost from the key's rate limits and
// credits. It never panics on any input and never answers VALID when it
// could not find out.
//
// With Config.Signals, every decision other than VALID and UNAVAILABLE is
// reported as a SignalFailure (with the key, when it was found), a VALID
// use from a network other than the previous one seen for the key (this
// instance, while it is cached) as a SignalNetwork, and the VALID uses of
// each key are counted and reported as a SignalUsage with every usage
// flush.
func (e *Engine) Verify(ctx context.Context, req Request) Result {
	var start, now time.Time
	if e.realClock {
		b := e.wallBase.Load()
		now = b.Add(time.Since(*b))
		start = now
	} else {
		start, now = time.Now(), e.now()
	}
	var span trace.Span
	if e.tracer != nil {
		ctx, span = e.startSpan(ctx, spanVerify)
	}
	var res Result
	e.verify(ctx, &req, now, &res)
	if e.signals != nil && res.Decision != keyward.DecisionValid && res.Decision != keyward.DecisionUnavailable {
		e.signalFailure(&req, &res, now)
	}
	e.m.observe(res.Decision, time.Since(start))
	if span != nil {
		endVerifySpan(span, &res)
	}
	return res
}

// verify runs the pipeline of docs/architecture.md, verification pipeline
// from step 2, into res, which is zero on entry.
func (e *Engine) verify(ctx context.Context, req *Request, now time.Time, res *Result) {
	if CheckCost(req.Cost) != nil {
		e.badCost(req.Cost)
		*res = Result{Decision: keyward.DecisionUnavailable, Agent: req.Agent}
		return
	}

	// 2. Global IP rules: a blocked address costs no parsing, hashing or
	// lookup. Rules that were never loaded fail closed.
	var rules *ipMatcher
	if e.ipLoader != nil {
		if rules = e.ipRulesAt(now); rules == nil {
			*res = Result{Decision: keyward.DecisionUnavailable, Agent: req.Agent}
			return
		}
		d, auto := rules.global(req.IP)
		if d != keyward.DecisionValid {
			*res = Result{Decision: d, Agent: req.Agent}
			return
		}
		if auto {
			e.verifyAutoBlocked(ctx, req, now, rules, res)
			return
		}
	}
	e.verifyKey(ctx, req, now, rules, nil, res)
}

// verifyKey runs the pipeline from step 3 with the IP rules in force (nil
// for none), into res, which is zero on entry. blocked is nil, or the
// network of the automatic block that holds the client address, whose
// misses reach the store only within its budget (see lookupBlocked).
// The result is written in place: Result is large (the decisions of up
// to inlineLimits rate limits), and returning it by value copied it at
// every level of the call.
func (e *Engine) verifyKey(ctx context.Context, req *Request, now time.Time, rules *ipMatcher, blocked *blockedNet, res *Result) {
	// 3. HMAC and cache. Input longer than any key is refused unhashed.
	// A key the cache holds is well-formed (its hash is a stored key's:
	// see slotOf), so a hit needs no format check.
	if len(req.Key) > apikey.MaxLen && !e.mayBeImported(req.Key) {
		*res = Result{Decision: keyward.DecisionMalformed, Agent: req.Agent}
		return
	}
	h := e.hasher.Hash(req.Key)
	en, fresh := e.cached(h, now.UnixNano())

	// 4. Format and checksum of anything else: garbage costs a hash but
	// no lookup, unless imported keys (of any format) exist.
	wellFormed := true
	if !fresh || en == nil {
		if _, wellFormed = apikey.Parse(req.Key); !wellFormed && !e.mayBeImported(req.Key) {
			*res = Result{Decision: keyward.DecisionMalformed, Agent: req.Agent}
			return
		}
	}

	// 5. The store, on a miss.
	var err error
	if blocked == nil {
		en, err = e.lookup(ctx, h, req.Key, en, fresh)
	} else {
		en, err = e.lookupBlocked(ctx, h, req.Key, now.UnixNano(), *blocked, en, fresh)
	}
	if err == errBlockedMiss {
		*res = Result{Decision: keyward.DecisionIPBlocked, Agent: req.Agent}
		return
	}
	if err != nil {
		*res = Result{Decision: keyward.DecisionUnavailable, Agent: req.Agent}
		return
	}
	if en == nil && !wellFormed {
		*res = Result{Decision: keyward.DecisionMalformed, Agent: req.Agent}
		return
	}
	if en == nil {
		*res = Result{Decision: keyward.DecisionNotFound, Agent: req.Agent}
		return
	}
	if req.Account != "" && en.accountID() != req.Account {
		*res = Result{Decision: keyward.DecisionNotFound, Agent: req.Agent}
		return
	}

	// 2, continued. The rules of the key's account, known only now.
	if rules != nil {
		if d := rules.forAccount(en.accountID(), req.IP); d != keyward.DecisionValid {
			*res = Result{Decision: d, key: en, Agent: req.Agent}
			return
		}
	}

	// 6. Status: disabled (key or account), revoked (a rotated key at the
	// end of its grace), expired.
	if d := en.status(now); d != keyward.DecisionValid {
		*res = Result{Decision: d, key: en, Agent: req.Agent}
		return
	}
	// 7. The key's own allow list: a key used from elsewhere did not
	// authenticate the request.
	if x := en.extra; x != nil && len(x.ipAllow) > 0 && !keyward.PrefixesContain(x.ipAllow, req.IP) {
		*res = Result{Decision: keyward.DecisionIPNotAllowed, key: en, Agent: req.Agent}
		return
	}
	// The key authenticated the request: that is a use, whatever the
	// permission check below says.
	e.used(en, now.UnixNano())

	// The environment the request requires, then its role, permissions
	// and query.
	if req.Environment != "" && en.environment() != req.Environment {
		*res = Result{Decision: keyward.DecisionWrongEnvironment, key: en, Agent: req.Agent}
		return
	}
	if !en.allows(req.Permissions, req.Query, req.Role) {
		*res = Result{Decision: keyward.DecisionInsufficientPermissions, key: en, Agent: req.Agent,
			need: need{perms: req.Permissions, query: req.Query, role: req.Role}}
		return
	}

	// 8. Rate limits, then credits: a call the limits refuse spends no
	// credits (but one the credits refuse has counted against the
	// limits: they measure attempts, credits what was served).
	// Shared limits and credits of the key's user and account count
	// with the key's own, every level all or nothing.
	res.Decision, res.key, res.Agent = keyward.DecisionValid, en, req.Agent
	if x := en.extra; !req.Unmetered && x != nil {
		if x.sharedLimits() {
			e.rateLimitLevels(ctx, res, req, now)
		} else if limits := en.effectiveRateLimits(); len(limits) > 0 {
			e.rateLimit(ctx, res, req, limits, now)
		}
		if res.Decision != keyward.DecisionValid {
			return
		}
		if x.sharedCredits() {
			e.spendLevels(ctx, res, req, now)
		} else if x.credits != nil {
			e.spend(ctx, res, req, now)
		}
		if res.Decision != keyward.DecisionValid {
			return
		}
	}
	if e.signals != nil {
		e.validUse(en, req.signalIP(), now)
	}
}

// rebase renews wallBase.
func (e *Engine) rebase() {
	now := time.Now()
	e.wallBase.Store(&now)
}

// Close stops the background goroutine and flushes pending usage. Verify
// keeps working after Close, but usage recorded after it is not written.
func (e *Engine) Close(ctx context.Context) error {
	e.closeOnce.Do(func() { close(e.stop) })
	select {
	case <-e.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return e.flush(ctx)
}

// run flushes usage every interval and sweeps idle cache entries every
// ttl, until Close.
func (e *Engine) run(ttl time.Duration) {
	defer close(e.done)
	flush := time.NewTicker(e.interval)
	defer flush.Stop()
	sweep := time.NewTicker(ttl)
	defer sweep.Stop()
	var rebase <-chan time.Time
	if e.realClock {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		rebase = t.C
	}
	var reload <-chan time.Time
	if e.ipLoader != nil {
		t := time.NewTicker(e.ipRefresh)
		defer t.Stop()
		reload = t.C
	}
	var imports <-chan time.Time
	if e.imports != nil {
		t := time.NewTicker(e.importRefresh)
		defer t.Stop()
		imports = t.C
	}
	for {
		select {
		case <-e.stop:
			return
		case <-reload:
			if err := e.ReloadIPRules(context.Background()); err != nil {
				e.log.Warn("reloading IP rules failed; the rules loaded before stay in force", "err", err)
			}
		case <-imports:
			if err := e.ReloadImports(context.Background()); err != nil {
				e.log.Warn("counting imported keys failed; the counts read before stay in force", "err", err)
			}
		case <-flush.C:
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			if err := e.flush(ctx); err != nil {
				e.log.Warn("recording key usage failed; will retry", "err", err)
			}
			cancel()
		case <-sweep.C:
			e.sweep()
		case <-rebase:
			e.rebase()
		}
	}
}
