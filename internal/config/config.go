// Package config is the configuration of keyward's server commands (serve,
// gateway, bootstrap, config check and the commands that open the store):
// keyward.yaml, then KEYWARD_* variables, then flags, each setting described
// once in a table that gives its yaml key, variable, flag and help.
// ParseConfig reads a file, Load builds and validates the whole, Validate
// names every invalid setting and its fix (*Error).
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/bus"
	"github.com/keyward/keyward/httpedge"
	"github.com/keyward/keyward/internal/yamldoc"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/tracing"
	"github.com/keyward/keyward/verify"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// DefaultConfigFile is read when neither --config nor KEYWARD_CONFIG names
// a file and it exists in the working directory.
const DefaultConfigFile = "keyward.yaml"

// Bounds of the duration settings. A cache entry older than maxCacheTTL
// would keep a revoked key working too long on an instance that missed an
// invalidation.
const (
	minCacheTTL        = time.Second
	maxCacheTTL        = time.Hour
	maxMaxStale        = 24 * time.Hour
	maxShutdownTimeout = 10 * time.Minute
)

// Config is the configuration of the server commands (serve, bootstrap,
// config check). It is read from keyward.yaml, then KEYWARD_* environment
// variables, then flags; each layer overrides the one before it.
type Config struct {
	// Listen is the TCP address the HTTP API listens on, host:port.
	Listen string `yaml:"listen"`
	// Data is the directory holding the SQLite database (keyward.db) and,
	// when no pepper is configured, the generated pepper file.
	Data string `yaml:"data"`
	// Peppers are the HMAC peppers by version, each "hex:..." or
	// "base64:..."; the highest version hashes new keys.
	Peppers map[int]keyward.Secret `yaml:"peppers"`
	// PepperFile names a file holding the peppers, one "VERSION:ENCODING:VALUE"
	// per line. Empty with no Peppers: DATA/pepper, generated if missing.
	PepperFile string `yaml:"pepper_file"`
	// CacheTTL bounds how long a verification result is cached: the worst
	// case for another instance to see a change whose invalidation was lost.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// MaxStale bounds how old a cached key may be, counted from its last
	// read from the store, while the store cannot be reached; past it the
	// key answers UNAVAILABLE. At least CacheTTL; it follows CacheTTL
	// unless set (see deriveDefaults).
	MaxStale time.Duration `yaml:"max_stale"`
	// CacheMaxBytes bounds the memory of the verification cache (see
	// verify.Config.MaxBytes); zero: a quarter of the memory available
	// (verify.DefaultMaxBytes).
	CacheMaxBytes ByteSize `yaml:"cache_max_bytes"`
	// Store selects the store: empty for SQLite in Data, or a postgres://
	// (postgresql://) URL. See store.go.
	Store string `yaml:"store"`
	// StoreReplicas are the URLs of streaming read replicas of a
	// PostgreSQL Store: key lookups on a cache miss read them when they
	// are fresh enough (see postgres.Options.Replicas).
	StoreReplicas []string `yaml:"store_replicas"`
	// Redis is an optional redis:// or rediss:// URL; set, it carries the
	// invalidation bus between instances.
	Redis string `yaml:"redis"`
	// BusChannel is the channel of the invalidation bus (Redis pub/sub, or
	// PostgreSQL LISTEN/NOTIFY); empty means the bus's default. Separate
	// keyward clusters sharing one Redis or one database set their own.
	BusChannel string `yaml:"bus_channel"`
	// BusDownCacheTTL is the cache TTL while the invalidation bus is down;
	// unless set, the smaller of bus.DefaultDegradedTTL and CacheTTL.
	BusDownCacheTTL time.Duration `yaml:"bus_down_cache_ttl"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
	// ShutdownTimeout bounds the graceful shutdown of serve.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// GatewayListen, if set, is where serve runs the gateway over
	// Gateway.Routes (see gateway.go and docs/gateway.md).
	GatewayListen string `yaml:"gateway_listen"`
	// TrustedProxies are the CIDR prefixes of proxies whose
	// X-Forwarded-For the admin API, the gateway and forward-auth believe
	// (package clientaddr); abuse detection never counts nor blocks them.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// WWWAuthenticateScheme and WWWAuthenticateRealm make the challenge of
	// every 401 of the API, the gateway and forward-auth
	// (httpedge.Challenge): Bearer realm="keyward" by default, ApiKey for
	// services whose clients expect it.
	WWWAuthenticateScheme string `yaml:"www_authenticate_scheme"`
	WWWAuthenticateRealm  string `yaml:"www_authenticate_realm"`
	// AgentHeaders are read as the agent besides X-Keyward-Agent by the
	// API, the gateway and forward-auth (X-OpenViking-Agent, say); the
	// gateway removes them from what reaches the upstream.
	AgentHeaders []string `yaml:"agent_headers"`
	// Gateway configures the gateway and the routes forward-auth uses.
	Gateway Gateway `yaml:"gateway"`
	// Keystore names a static keystore file (docs/simple-modes.md); empty
	// turns the keystore off.
	Keystore string `yaml:"keystore"`
	// MasterKeys are the AES-256 keys by version that encrypt audit
	// details, each "hex:..." or "base64:..."; the highest version
	// encrypts new entries.
	MasterKeys map[int]keyward.Secret `yaml:"master_keys"`
	// MasterKeyFile names a file of master keys, one
	// "VERSION:ENCODING:VALUE" per line. Empty with no MasterKeys: DATA/
	// master-keys on SQLite, generated if missing.
	MasterKeyFile string `yaml:"master_key_file"`
	// RateLimitEngine is local (each instance counts alone) or redis
	// (instances share the counts); empty: redis when Redis is set.
	RateLimitEngine string `yaml:"rate_limit_engine"`
	// CreditLedger is store (every spend an atomic store update) or redis
	// (counted in Redis, written back); empty: redis when Redis is set.
	CreditLedger string `yaml:"credit_ledger"`
	// Abuse configures brute-force blocking and the anomaly rules.
	Abuse Abuse `yaml:"abuse"`
	// Lifecycle configures the lifecycle jobs: expiry, rotation, cleanup
	// and credit refills (see lifecycle.go and docs/lifecycle.md).
	Lifecycle Lifecycle `yaml:"lifecycle"`
	// Usage configures how long usage analytics are kept (usage.go).
	Usage Usage `yaml:"usage"`
	// Console configures the web console at /console (console.go).
	Console Console `yaml:"console"`
	// Webhooks configures the delivery of webhook events (webhooks.go).
	Webhooks Webhooks `yaml:"webhooks"`
	// KeyPrefixes are the prefixes of new keys by tier and environment
	// (prefixes.go).
	KeyPrefixes KeyPrefixes `yaml:"key_prefixes"`
	// DevMode turns authentication off for local development; Validate
	// allows it only with a loopback Listen.
	DevMode bool `yaml:"dev_mode"`

	// sources records where each setting came from, for config check.
	sources map[string]string
}

// Default returns the configuration used when nothing is set.
func Default() *Config {
	return &Config{
		Listen:          "127.0.0.1:8080",
		Data:            "./keyward-data",
		CacheTTL:        verify.DefaultCacheTTL,
		MaxStale:        verify.DefaultCacheTTL,
		BusDownCacheTTL: bus.DefaultDegradedTTL,
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 15 * time.Second,
		Lifecycle:       defaultLifecycle(),
		Abuse:           defaultAbuse(),

		WWWAuthenticateScheme: httpedge.DefaultScheme,
		WWWAuthenticateRealm:  httpedge.DefaultRealm,
	}
}

// setting describes one configuration setting in its three spellings.
type setting struct {
	key  string // yaml key, also the name in errors
	env  string
	flag string
	// usage is the help of the flag; AddFlags adds the variable.
	usage string
	set   func(c *Config, v string) error
	// value is the setting's value as config check shows it (secrets and
	// URL passwords redacted): a string, a list, a bool or a number; its
	// text (Shown.Text) is also the flag's default.
	value func(c *Config) any
}

var settings = []setting{
	{key: "listen", env: "KEYWARD_LISTEN", flag: "listen", usage: "address to listen on, host:port",
		set:   func(c *Config, v string) error { c.Listen = v; return nil },
		value: func(c *Config) any { return c.Listen }},
	{key: "data", env: "KEYWARD_DATA", flag: "data", usage: "data directory: SQLite database and generated pepper",
		set:   func(c *Config, v string) error { c.Data = v; return nil },
		value: func(c *Config) any { return c.Data }},
	{key: "pepper_file", env: "KEYWARD_PEPPER_FILE", flag: "pepper-file", usage: "file holding the peppers, mode 0600",
		set:   func(c *Config, v string) error { c.PepperFile = v; c.Peppers = nil; return nil },
		value: func(c *Config) any { return c.PepperFile }},
	{key: "cache_ttl", env: "KEYWARD_CACHE_TTL", flag: "cache-ttl", usage: "how long verification results are cached",
		set:   func(c *Config, v string) error { return setDuration(&c.CacheTTL, v) },
		value: func(c *Config) any { return c.CacheTTL.String() }},
	{key: "max_stale", env: "KEYWARD_MAX_STALE", flag: "max-stale", usage: "how old a cached key may be while the store cannot be reached, then 503; default cache_ttl",
		set:   func(c *Config, v string) error { return setDuration(&c.MaxStale, v) },
		value: func(c *Config) any { return c.MaxStale.String() }},
	{key: "cache_max_bytes", env: "KEYWARD_CACHE_MAX_BYTES", flag: "cache-max-bytes", usage: "memory bound of the verification cache, e.g. 2GiB; default a quarter of GOMEMLIMIT or of the memory",
		set:   func(c *Config, v string) error { return setByteSize(&c.CacheMaxBytes, v) },
		value: func(c *Config) any { return c.CacheMaxBytes }},
	// The store and the invalidation bus: see store.go.
	{key: "store", env: "KEYWARD_STORE", flag: "store", usage: "store: empty for SQLite in --data, or a postgres:// URL",
		set:   func(c *Config, v string) error { c.Store = v; return nil },
		value: func(c *Config) any { return RedactURL(c.Store) }},
	{key: "store_replicas", env: "KEYWARD_STORE_REPLICAS", flag: "store-replicas", usage: "comma-separated postgres:// URLs of read replicas of the store, for key lookups",
		set:   func(c *Config, v string) error { c.StoreReplicas = splitList(v); return nil },
		value: func(c *Config) any { return redactURLs(c.StoreReplicas) }},
	{key: "redis", env: "KEYWARD_REDIS_URL", flag: "redis", usage: "redis:// or rediss:// URL of the invalidation bus",
		set:   func(c *Config, v string) error { c.Redis = v; return nil },
		value: func(c *Config) any { return RedactURL(c.Redis) }},
	{key: "bus_channel", env: "KEYWARD_BUS_CHANNEL", flag: "bus-channel", usage: "channel of the invalidation bus, Redis or LISTEN/NOTIFY",
		set:   func(c *Config, v string) error { c.BusChannel = v; return nil },
		value: func(c *Config) any { return c.BusChannel }},
	{key: "bus_down_cache_ttl", env: "KEYWARD_BUS_DOWN_CACHE_TTL", flag: "bus-down-cache-ttl", usage: "cache TTL while the invalidation bus is down; default 5s, or cache_ttl if shorter",
		set:   func(c *Config, v string) error { return setDuration(&c.BusDownCacheTTL, v) },
		value: func(c *Config) any { return c.BusDownCacheTTL.String() }},
	{key: "log_level", env: "KEYWARD_LOG_LEVEL", flag: "log-level", usage: "debug, info, warn or error",
		set:   func(c *Config, v string) error { c.LogLevel = v; return nil },
		value: func(c *Config) any { return c.LogLevel }},
	{key: "log_format", env: "KEYWARD_LOG_FORMAT", flag: "log-format", usage: "text or json",
		set:   func(c *Config, v string) error { c.LogFormat = v; return nil },
		value: func(c *Config) any { return c.LogFormat }},
	{key: "shutdown_timeout", env: "KEYWARD_SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", usage: "how long serve waits for requests on shutdown",
		set:   func(c *Config, v string) error { return setDuration(&c.ShutdownTimeout, v) },
		value: func(c *Config) any { return c.ShutdownTimeout.String() }},
	// The gateway: see gateway.go.
	{key: "gateway_listen", env: "KEYWARD_GATEWAY_LISTEN", flag: "gateway-listen", usage: "address serve runs the gateway routes on, host:port",
		set:   func(c *Config, v string) error { c.GatewayListen = v; return nil },
		value: func(c *Config) any { return c.GatewayListen }},
	{key: "trusted_proxies", env: "KEYWARD_TRUSTED_PROXIES", flag: "trusted-proxies", usage: "comma-separated CIDRs of proxies whose X-Forwarded-For is believed",
		set:   setTrustedProxies,
		value: func(c *Config) any { return list(c.TrustedProxies) }},
	// What a client sees of authentication: see gateway.go.
	{key: "www_authenticate_scheme", env: "KEYWARD_WWW_AUTHENTICATE_SCHEME", flag: "www-authenticate-scheme", usage: "scheme of the WWW-Authenticate challenge on a 401, e.g. ApiKey",
		set:   func(c *Config, v string) error { c.WWWAuthenticateScheme = v; return nil },
		value: func(c *Config) any { return c.WWWAuthenticateScheme }},
	{key: "www_authenticate_realm", env: "KEYWARD_WWW_AUTHENTICATE_REALM", flag: "www-authenticate-realm", usage: "realm of the WWW-Authenticate challenge on a 401",
		set:   func(c *Config, v string) error { c.WWWAuthenticateRealm = v; return nil },
		value: func(c *Config) any { return c.WWWAuthenticateRealm }},
	{key: "agent_headers", env: "KEYWARD_AGENT_HEADERS", flag: "agent-headers", usage: "comma-separated headers read as the agent besides X-Keyward-Agent, e.g. X-OpenViking-Agent",
		set:   func(c *Config, v string) error { c.AgentHeaders = splitList(v); return nil },
		value: func(c *Config) any { return list(c.AgentHeaders) }},
	// Master keys of the audit log: see masterkeys.go.
	{key: "master_key_file", env: "KEYWARD_MASTER_KEY_FILE", flag: "master-key-file", usage: "file holding the master keys of the audit log, mode 0600",
		set:   func(c *Config, v string) error { c.MasterKeyFile = v; c.MasterKeys = nil; return nil },
		value: func(c *Config) any { return c.MasterKeyFile }},
	// Rate limits and credits: see abuse.go.
	{key: "rate_limit_engine", env: "KEYWARD_RATE_LIMIT_ENGINE", flag: "rate-limit-engine", usage: "local or redis; empty: redis when --redis is set",
		set:   func(c *Config, v string) error { c.RateLimitEngine = v; return nil },
		value: func(c *Config) any { return c.RateLimitEngine }},
	{key: "credit_ledger", env: "KEYWARD_CREDIT_LEDGER", flag: "credit-ledger", usage: "store or redis; empty: redis when --redis is set",
		set:   func(c *Config, v string) error { c.CreditLedger = v; return nil },
		value: func(c *Config) any { return c.CreditLedger }},
	// The simple modes: see simple.go.
	{key: "keystore", env: "KEYWARD_KEYSTORE", flag: "keystore", usage: "static keystore file of SHA-256 token digests, see docs/simple-modes.md",
		set:   func(c *Config, v string) error { c.Keystore = v; return nil },
		value: func(c *Config) any { return c.Keystore }},
	{key: "dev_mode", env: "KEYWARD_DEV_MODE", flag: "dev", usage: "DEV MODE: no authentication at all; loopback listen only", set: setDevMode,
		value: func(c *Config) any { return c.DevMode }},
}

// Pepper environment variables. KEYWARD_PEPPER is a single pepper (version
// 1); KEYWARD_PEPPERS lists versioned peppers. They have no flags: a secret
// on a command line is visible to every user of the machine.
const (
	EnvPepper  = "KEYWARD_PEPPER"
	EnvPeppers = "KEYWARD_PEPPERS"
	EnvConfig  = "KEYWARD_CONFIG"
)

func setDuration(d *time.Duration, v string) error {
	p, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration: use a Go duration such as 30s, 5m or 1h", v)
	}
	*d = p
	return nil
}

// lookupSetting returns the setting with yaml key or flag name key.
func lookupSetting(key string) setting {
	for _, s := range settings {
		if s.key == key || s.flag == key {
			return s
		}
	}
	panic("unknown setting " + key)
}

// ParseConfig reads a YAML configuration from r on top of Default.
// Unknown keys are an error. It does not validate; call Validate.
func ParseConfig(r io.Reader) (*Config, error) {
	c := Default()
	if err := c.readYAML(r, "config"); err != nil {
		return nil, err
	}
	return c, nil
}

// readYAML decodes r over c; settings r names are recorded as coming from
// source.
func (c *Config) readYAML(r io.Reader, source string) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("reading %s: %w", source, err)
	}
	root, err := yamldoc.Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %v", source, err)
	}
	if probs := yamldoc.Decode(root, c); len(probs) > 0 {
		return fmt.Errorf("%s: %s", source, yamlProblems(probs))
	}
	if root != nil && root.Kind == yaml.MappingNode {
		for i := 0; i < len(root.Content); i += 2 {
			c.setSource(root.Content[i].Value, source)
		}
	}
	return nil
}

// yamlProblems says what is wrong in a configuration file on one line, by
// line and setting name, without the values (one could be a pepper).
func yamlProblems(probs []yamldoc.Problem) string {
	msgs := make([]string, len(probs))
	for i, p := range probs {
		switch {
		case p.Unknown:
			msgs[i] = fmt.Sprintf("line %d: %s is not a keyward setting (see docs/configuration.md)", p.Line, p.Path)
		case p.Repeated:
			msgs[i] = fmt.Sprintf("line %d: %s is set twice: keep one", p.Line, p.Path)
		case p.Path == "":
			msgs[i] = fmt.Sprintf("line %d: the file must be %s", p.Line, p.Want)
		default:
			msgs[i] = fmt.Sprintf("line %d: %s must be %s", p.Line, p.Path, p.Want)
		}
	}
	return strings.Join(msgs, "; ")
}

// setSource records where key came from; "" forgets it (back to default).
func (c *Config) setSource(key, source string) {
	if c.sources == nil {
		c.sources = map[string]string{}
	}
	if source == "" {
		delete(c.sources, key)
		return
	}
	c.sources[key] = source
}

// Source says where setting key came from: "default", "file PATH",
// "env NAME" or "flag --NAME".
func (c *Config) Source(key string) string {
	if s, ok := c.sources[key]; ok {
		return s
	}
	return "default"
}

// applyEnv overrides c with the KEYWARD_* variables that are set and not
// empty.
func (c *Config) applyEnv(getenv func(string) string) error {
	for _, s := range settings {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		if err := s.set(c, v); err != nil {
			return Errorf(s.key, "%s %v", s.env, err)
		}
		c.setSource(s.key, "env "+s.env)
		if s.key == "pepper_file" {
			c.setSource("peppers", "")
		}
	}
	if v := getenv(EnvMasterKeys); v != "" {
		if err := setMasterKeys(c, v); err != nil {
			return Errorf("master_keys", "%s %v", EnvMasterKeys, err)
		}
		c.setSource("master_keys", "env "+EnvMasterKeys)
	}
	one, many := getenv(EnvPepper), getenv(EnvPeppers)
	switch {
	case one != "" && many != "":
		return Errorf("peppers", "both %s and %s are set: set %s alone for one pepper, or list every version in %s", EnvPepper, EnvPeppers, EnvPepper, EnvPeppers)
	case one != "":
		c.Peppers = map[int]keyward.Secret{1: keyward.Secret(one)}
	case many != "":
		p, err := ParsePepperList(strings.Split(many, ","), EnvPeppers)
		if err != nil {
			return err
		}
		c.Peppers = p
	default:
		return nil
	}
	src := "env " + EnvPepper
	if many != "" {
		src = "env " + EnvPeppers
	}
	if c.Source("pepper_file") != "default" && !strings.HasPrefix(c.Source("pepper_file"), "env ") {
		// A pepper from the environment replaces a pepper file set in
		// the config file.
		c.PepperFile = ""
		c.setSource("pepper_file", "")
	}
	c.setSource("peppers", src)
	return nil
}

// applyFlags overrides c with the flags of fs that were given. Flags that
// fs does not define are skipped.
func (c *Config) applyFlags(fs *pflag.FlagSet) error {
	for _, s := range settings {
		f := fs.Lookup(s.flag)
		if f == nil || !f.Changed {
			continue
		}
		if err := s.set(c, f.Value.String()); err != nil {
			return Errorf(s.key, "--%s %v", s.flag, err)
		}
		c.setSource(s.key, "flag --"+s.flag)
		if s.key == "pepper_file" {
			c.setSource("peppers", "")
		}
	}
	return nil
}

// AddFlags defines the flags of the named settings on fs.
func AddFlags(fs *pflag.FlagSet, flags ...string) {
	d := Default()
	for _, name := range flags {
		s := lookupSetting(name)
		usage := s.usage + " (env " + s.env + ")"
		if s.flag == "dev" {
			fs.Bool(s.flag, d.DevMode, usage)
			continue
		}
		fs.String(s.flag, Shown{Value: s.value(d)}.Text(), usage)
	}
}

// Validate checks every setting and returns a *Error naming each
// setting that is wrong and how to fix it. It touches no files: pepper
// files are checked when they are read.
func (c *Config) Validate() error {
	var errs []*SettingError
	add := func(key, format string, args ...any) {
		errs = append(errs, &SettingError{Setting: key, Problem: fmt.Sprintf(format, args...)})
	}
	if err := CheckListen(c.Listen); err != nil {
		add("listen", "%q %v", c.Listen, err)
	}
	if strings.TrimSpace(c.Data) == "" {
		add("data", "is empty: name the data directory, e.g. ./keyward-data")
	}
	if len(c.MasterKeys) > 0 && c.MasterKeyFile != "" {
		add("master_keys", "both master_keys and master_key_file are set: keep one of them")
	}
	if len(c.MasterKeys) > 0 {
		if _, err := keyring.New(c.MasterKeys); err != nil {
			add("master_keys", "%s", keyward.ErrorMessage(err))
		}
	}
	if len(c.Peppers) > 0 && c.PepperFile != "" {
		add("peppers", "both peppers and pepper_file are set: keep one of them")
	}
	for _, v := range sortedVersions(c.Peppers) {
		if v <= 0 {
			add("peppers", "version %d must be a positive integer", v)
			continue
		}
		if _, err := DecodePepper(c.Peppers[v]); err != nil {
			add("peppers", "version %d: %v", v, err)
		}
	}
	if c.CacheTTL < minCacheTTL || c.CacheTTL > maxCacheTTL {
		add("cache_ttl", "%s is out of range: use between %s and %s (a long TTL keeps revoked keys cached)", c.CacheTTL, minCacheTTL, maxCacheTTL)
	} else if c.MaxStale < c.CacheTTL || c.MaxStale > maxMaxStale {
		add("max_stale", "%s is out of range: use between cache_ttl (%s) and %s (a long max_stale keeps revoked keys working on an instance cut off from the store), e.g. %s", c.MaxStale, c.CacheTTL, maxMaxStale, c.CacheTTL)
	}
	if c.CacheMaxBytes != 0 && c.CacheMaxBytes < minCacheMaxBytes {
		add("cache_max_bytes", "%s is too small: use at least 1MiB, or leave it unset for a quarter of the memory available", c.CacheMaxBytes)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		add("log_level", "%q is not a log level: use debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("log_format", "%q is not a log format: use text or json", c.LogFormat)
	}
	if c.ShutdownTimeout <= 0 || c.ShutdownTimeout > maxShutdownTimeout {
		add("shutdown_timeout", "%s is out of range: use a duration above 0 and at most %s, e.g. 15s", c.ShutdownTimeout, maxShutdownTimeout)
	}
	c.validateStore(add)
	c.validateSimpleModes(add)
	c.validateChallenge(add)
	c.validateGateway(add)
	c.validateAbuse(add)
	c.validateLifecycle(add)
	c.validateUsage(add)
	c.validateConsole(add)
	c.validateWebhooks(add)
	c.validateKeyPrefixes(add)
	if len(errs) > 0 {
		return &Error{Errors: errs}
	}
	return nil
}

// CheckListen checks a listen address, host:port; the error says how to
// write one.
func CheckListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be host:port, e.g. 127.0.0.1:8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("has port %q: use a number from 0 to 65535, e.g. 127.0.0.1:8080", port)
	}
	if strings.ContainsAny(host, " /?#@") {
		return errors.New("has an invalid host: use an IP address or host name, e.g. 127.0.0.1:8080")
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q", s)
}

// Logger returns the logger of the server commands, writing to w.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	// The log lines of a traced request carry its trace_id and span_id.
	if c.LogFormat == "json" {
		return slog.New(tracing.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(tracing.LogHandler(slog.NewTextHandler(w, opts)))
}

// DatabasePath is the SQLite database inside the data directory.
func (c *Config) DatabasePath() string { return joinPath(c.Data, "keyward.db") }

// DefaultPepperPath is the pepper generated when none is configured.
func (c *Config) DefaultPepperPath() string { return joinPath(c.Data, "pepper") }

// SettingError says what is wrong with one setting and how to fix it.
type SettingError struct {
	Setting string
	Problem string
}

func (e *SettingError) Error() string {
	s := lookupSettingOrNil(e.Setting)
	where := ""
	switch {
	case s != nil:
		where = fmt.Sprintf(" (yaml %s, env %s, flag --%s)", s.key, s.env, s.flag)
	case e.Setting == "peppers":
		where = " (yaml peppers, env KEYWARD_PEPPER or KEYWARD_PEPPERS)"
	}
	return e.Setting + ": " + e.Problem + where
}

func lookupSettingOrNil(key string) *setting {
	for i := range settings {
		if settings[i].key == key {
			return &settings[i]
		}
	}
	return nil
}

// Error lists every invalid setting. Its message is one line.
type Error struct {
	Errors []*SettingError
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Errors))
	for i, s := range e.Errors {
		parts[i] = s.Error()
	}
	return "invalid configuration: " + strings.Join(parts, "; ")
}

// Errorf returns an *Error of the one setting key.
func Errorf(key, format string, args ...any) *Error {
	return &Error{Errors: []*SettingError{{Setting: key, Problem: fmt.Sprintf(format, args...)}}}
}

func sortedVersions(m map[int]keyward.Secret) []int {
	vs := make([]int, 0, len(m))
	for v := range m {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// Load builds the configuration of a server command: defaults, the
// config file, the environment, then the flags of fs; then validates it.
func Load(getenv func(string) string, fs *pflag.FlagSet) (*Config, error) {
	path, explicit := "", false
	if f := fs.Lookup("config"); f != nil && f.Changed {
		path, explicit = f.Value.String(), true
	} else if v := getenv(EnvConfig); v != "" {
		path, explicit = v, true
	} else if _, err := os.Stat(DefaultConfigFile); err == nil {
		path = DefaultConfigFile
	}
	c := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			if explicit && errors.Is(err, os.ErrNotExist) {
				return nil, Errorf("config", "file %s does not exist: create it or fix --config / %s", path, EnvConfig)
			}
			return nil, Errorf("config", "%v", err)
		}
		err = c.readYAML(f, "file "+path)
		if err == nil {
			err = checkConfigFileMode(f, path, c)
		}
		f.Close()
		if err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				return nil, ce
			}
			return nil, &Error{Errors: []*SettingError{{Setting: "config", Problem: err.Error()}}}
		}
	}
	if err := c.applyEnv(getenv); err != nil {
		return nil, err
	}
	if err := c.applyFlags(fs); err != nil {
		return nil, err
	}
	c.deriveDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// deriveDefaults gives the settings whose default follows cache_ttl their
// value, unless they were set: max_stale is cache_ttl, bus_down_cache_ttl
// is at most cache_ttl.
func (c *Config) deriveDefaults() {
	if c.Source("max_stale") == "default" {
		c.MaxStale = c.CacheTTL
	}
	if c.Source("bus_down_cache_ttl") == "default" {
		c.BusDownCacheTTL = min(bus.DefaultDegradedTTL, c.CacheTTL)
	}
}

// checkConfigFileMode refuses a config file holding peppers that group or
// others can read, as readPepperFile refuses such a pepper file (fail
// closed): whoever reads a pepper can test stolen key hashes offline.
func checkConfigFileMode(f *os.File, path string, c *Config) error {
	holds := (len(c.Peppers) > 0 && c.Source("peppers") == "file "+path) || (len(c.MasterKeys) > 0 && c.Source("master_keys") == "file "+path)
	if runtime.GOOS == "windows" || !holds {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return Errorf("config", "%v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return Errorf("config", "file %s holds peppers or master keys and has mode %04o, so others on this machine can read them: run chmod 600 %s (or move them to a pepper_file/master_key_file or KEYWARD_PEPPERS/KEYWARD_MASTER_KEYS)", path, perm, path)
	}
	return nil
}

// Shown is one setting as config check shows it.
type Shown struct {
	// Key is the yaml key.
	Key string
	// Value is what config check -o json prints: a string, a list, a
	// bool or a number, with secrets and URL passwords redacted.
	Value any
	// Source is where the value came from (Config.Source).
	Source string
}

// Text is the value as config check's table prints it.
func (s Shown) Text() string {
	switch v := s.Value.(type) {
	case string:
		return v
	case []string:
		return strings.Join(v, ",")
	case bool:
		return strconv.FormatBool(v)
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(s.Value)
}

// Shown returns every setting of the table with its value and source, in
// the table's order. Settings outside the table (peppers, master keys, the
// blocks) are for the caller to show.
func (c *Config) Shown() []Shown {
	out := make([]Shown, len(settings))
	for i, s := range settings {
		out[i] = Shown{Key: s.key, Value: s.value(c), Source: c.Source(s.key)}
	}
	return out
}

// list is v, or an empty list for nil: a list setting shows as [] when
// unset.
func list(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// Keys returns the yaml key of every setting of the table (those with an
// environment variable and a flag), in the table's order.
func Keys() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.key
	}
	return out
}

// FlagNames returns the flag of every setting of the table, for AddFlags.
func FlagNames() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.flag
	}
	return out
}
