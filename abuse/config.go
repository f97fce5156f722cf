package abuse

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/keyward/keyward"
)

// Defaults of Config.
const (
	DefaultQueueSize     = 16384
	DefaultTimeout       = 5 * time.Second
	DefaultBlockFor      = 15 * time.Minute
	DefaultIPv6PrefixLen = 64
	DefaultMaxTracked    = 100_000

	DefaultBruteForceThreshold = 20
	DefaultBruteForceWindow    = time.Minute
	DefaultBruteForceSeverity  = keyward.SeverityHigh

	DefaultIPSpreadWindow      = time.Hour
	DefaultIPSpreadWindows     = 24
	DefaultIPSpreadMinNetworks = 10
	DefaultIPSpreadFactor      = 3.0
	DefaultIPSpreadSeverity    = keyward.SeverityMedium

	DefaultUsageSpikeWindow   = 5 * time.Minute
	DefaultUsageSpikeWindows  = 12
	DefaultUsageSpikeFactor   = 10.0
	DefaultUsageSpikeMinimum  = 100
	DefaultUsageSpikeSeverity = keyward.SeverityMedium

	DefaultRevokedKeyUseWindow   = time.Hour
	DefaultRevokedKeyUseSeverity = keyward.SeverityHigh

	DefaultFailureBurstThreshold = 50
	DefaultFailureBurstWindow    = 5 * time.Minute
	DefaultFailureBurstSeverity  = keyward.SeverityMedium
)

// MaxWindows bounds the Windows (history length) of a rule.
const MaxWindows = 1000

// Config configures a Detector. Zero numbers, durations and severities take
// the defaults; a rule is off unless Enabled. DefaultConfig returns every
// rule enabled, with no action.
type Config struct {
	// Recorder stores the anomalies (keyward.Store does). Required.
	Recorder Recorder
	// Actions blocks networks, disables keys and reloads IP rules.
	// Required.
	Actions Actions
	// Counter counts failures and holds the markers that make a block or a
	// report happen once. Default NewLocalCounter(MaxTracked), which counts
	// for this instance only; use redisabuse.Counter to share counts and
	// markers between instances.
	Counter Counter
	// Events receives every anomaly after it is stored: the seam for the
	// audit log and webhooks. Optional.
	Events EventSink
	// QueueSize bounds the signals waiting to be evaluated; when full, more
	// are dropped (counted in keyward_abuse_signals_dropped_total, and
	// logged once a minute). Default DefaultQueueSize (16384).
	QueueSize int
	// Timeout bounds the evaluation of one signal: its Counter calls, its
	// action and the storing of its anomaly. Default DefaultTimeout (5s).
	Timeout time.Duration
	// BlockFor is how long an automatic block lasts: the expiry of the IP
	// rule that brute-force blocking and the block_ip action create, at
	// least 1s. Default DefaultBlockFor (15m).
	BlockFor time.Duration
	// AllowList holds networks never blocked automatically (the operator's
	// own, say): their failures are not counted for brute force, and a
	// block_ip action against them fails with an ActionError saying so.
	// Default none; loopback is not special.
	AllowList []netip.Prefix
	// TrustedProxies are the reverse proxies in front of keyward (the
	// trusted_proxies setting): a request they relay without naming its
	// client carries the proxy's own address, so their failures are never
	// counted and no block covering one of them is ever made (a block_ip
	// action against one fails with an ActionError saying so). Blocking
	// one would refuse every client behind it. Default none.
	TrustedProxies []netip.Prefix
	// IPv6PrefixLen is the length of the IPv6 network that brute-force
	// counting and blocking treat as one client: an IPv6 host commonly holds
	// a whole /64, and could otherwise evade the count by changing address.
	// 128 counts single addresses. IPv4 addresses always count singly.
	// Default DefaultIPv6PrefixLen (64).
	IPv6PrefixLen int
	// MaxTracked bounds the entries of each in-memory table: keys tracked
	// by ip_spread and usage_spike, networks, keys and accounts remembered
	// as handled, and the local counter's counts and markers. Idle entries
	// are swept when a table is full; past the bound, new ones are not
	// tracked (counted in keyward_abuse_errors_total{op="track"}). Default
	// DefaultMaxTracked (100,000).
	MaxTracked int

	BruteForce    BruteForce
	IPSpread      IPSpread
	UsageSpike    UsageSpike
	RevokedKeyUse RevokedKeyUse
	FailureBurst  FailureBurst

	// Now is the clock of windows (for signals without At), block expiries
	// and anomaly times. Default time.Now.
	Now func() time.Time
	// Logger receives rate-limited warnings about errors and dropped
	// signals. Default slog.Default(); component=abuse is added.
	Logger *slog.Logger
}

// BruteForce configures brute-force blocking: Threshold failed
// verifications (MALFORMED, NOT_FOUND, REVOKED, EXPIRED, DISABLED) from one
// network within one fixed Window block it for Config.BlockFor and record
// an anomaly of type brute_force with action block_ip.
type BruteForce struct {
	// Enabled turns brute-force blocking on.
	Enabled bool `yaml:"enabled"`
	// Threshold is the failure that triggers the block: the Threshold-th
	// in one window. Default DefaultBruteForceThreshold (20).
	Threshold int64 `yaml:"threshold"`
	// Window is the length of the fixed counting windows, at least 1s.
	// Default DefaultBruteForceWindow (1m).
	Window time.Duration `yaml:"window"`
	// Severity of the brute_force anomaly. Default
	// DefaultBruteForceSeverity (high).
	Severity keyward.Severity `yaml:"severity"`
}

// IPSpread configures the ip_spread rule: a key used from more distinct
// networks (IPv4 /24, IPv6 /64) in one Window than max(MinNetworks, Factor ×
// the key's mean per window over the Windows before).
type IPSpread struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// Window is the length of the fixed windows, at least 1s. Default
	// DefaultIPSpreadWindow (1h).
	Window time.Duration `yaml:"window"`
	// Windows is how many past windows the baseline averages, 1 to
	// MaxWindows. Default DefaultIPSpreadWindows (24).
	Windows int `yaml:"windows"`
	// MinNetworks is the floor of the limit: a key is reported only when
	// used from more networks than this in a window. Default
	// DefaultIPSpreadMinNetworks (10).
	MinNetworks int `yaml:"min_networks"`
	// Factor multiplies the baseline, above 0. Default
	// DefaultIPSpreadFactor (3).
	Factor float64 `yaml:"factor"`
	// Severity of the anomaly. Default DefaultIPSpreadSeverity (medium).
	Severity keyward.Severity `yaml:"severity"`
	// Action is "" (none) or disable_key. Default none.
	Action keyward.AnomalyAction `yaml:"action"`
}

// UsageSpike configures the usage_spike rule: a key's uses in one Window
// reach Minimum and exceed Factor × its mean uses per window over the
// Windows before. A key is judged once it has been tracked for Windows
// windows.
type UsageSpike struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// Window is the length of the fixed windows, at least 1s. Default
	// DefaultUsageSpikeWindow (5m).
	Window time.Duration `yaml:"window"`
	// Windows is how many past windows the trailing mean covers, 1 to
	// MaxWindows. Default DefaultUsageSpikeWindows (12).
	Windows int `yaml:"windows"`
	// Factor multiplies the trailing mean, above 0. Default
	// DefaultUsageSpikeFactor (10).
	Factor float64 `yaml:"factor"`
	// Minimum is the fewest uses in a window that can be a spike. Default
	// DefaultUsageSpikeMinimum (100).
	Minimum int64 `yaml:"minimum"`
	// Severity of the anomaly. Default DefaultUsageSpikeSeverity (medium).
	Severity keyward.Severity `yaml:"severity"`
	// Action is "" (none) or disable_key. Default none.
	Action keyward.AnomalyAction `yaml:"action"`
}

// RevokedKeyUse configures the revoked_key_use rule: a revoked or expired
// key presented, reported at most once per key per Window.
type RevokedKeyUse struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// Window is how long a reported key is not reported again, at least
	// 1s. Default DefaultRevokedKeyUseWindow (1h).
	Window time.Duration `yaml:"window"`
	// Severity of the anomaly. Default DefaultRevokedKeyUseSeverity (high).
	Severity keyward.Severity `yaml:"severity"`
	// Action is "" (none) or block_ip (the presenting network, for
	// Config.BlockFor). Default none.
	Action keyward.AnomalyAction `yaml:"action"`
}

// FailureBurst configures the failure_burst rule: Threshold failed
// verifications of one account's keys in one fixed Window, other than
// RATE_LIMITED and USAGE_EXCEEDED. It has no action.
type FailureBurst struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// Threshold is the failure that is reported: the Threshold-th in one
	// window. Default DefaultFailureBurstThreshold (50).
	Threshold int64 `yaml:"threshold"`
	// Window is the length of the fixed counting windows, at least 1s.
	// Default DefaultFailureBurstWindow (5m).
	Window time.Duration `yaml:"window"`
	// Severity of the anomaly. Default DefaultFailureBurstSeverity
	// (medium).
	Severity keyward.Severity `yaml:"severity"`
}

// DefaultConfig returns a Config with every rule enabled, no action and
// every setting at its default. Set Recorder and Actions before New.
func DefaultConfig() Config {
	return Config{
		QueueSize:     DefaultQueueSize,
		Timeout:       DefaultTimeout,
		BlockFor:      DefaultBlockFor,
		IPv6PrefixLen: DefaultIPv6PrefixLen,
		MaxTracked:    DefaultMaxTracked,
		BruteForce: BruteForce{
			Enabled: true, Threshold: DefaultBruteForceThreshold,
			Window: DefaultBruteForceWindow, Severity: DefaultBruteForceSeverity,
		},
		IPSpread: IPSpread{
			Enabled: true, Window: DefaultIPSpreadWindow, Windows: DefaultIPSpreadWindows,
			MinNetworks: DefaultIPSpreadMinNetworks, Factor: DefaultIPSpreadFactor,
			Severity: DefaultIPSpreadSeverity,
		},
		UsageSpike: UsageSpike{
			Enabled: true, Window: DefaultUsageSpikeWindow, Windows: DefaultUsageSpikeWindows,
			Factor: DefaultUsageSpikeFactor, Minimum: DefaultUsageSpikeMinimum,
			Severity: DefaultUsageSpikeSeverity,
		},
		RevokedKeyUse: RevokedKeyUse{
			Enabled: true, Window: DefaultRevokedKeyUseWindow, Severity: DefaultRevokedKeyUseSeverity,
		},
		FailureBurst: FailureBurst{
			Enabled: true, Threshold: DefaultFailureBurstThreshold,
			Window: DefaultFailureBurstWindow, Severity: DefaultFailureBurstSeverity,
		},
	}
}

// Validate fills the defaults of c's settings and checks them; it does not
// look at Recorder and Actions, which New requires. The error is EINVALID
// and names the field. Configuration loaders call it to report a bad
// setting before anything starts.
func (c *Config) Validate() error {
	checks := []error{
		positive("QueueSize", &c.QueueSize, DefaultQueueSize),
		duration("Timeout", &c.Timeout, DefaultTimeout),
		window("BlockFor", &c.BlockFor, DefaultBlockFor),
		positive("IPv6PrefixLen", &c.IPv6PrefixLen, DefaultIPv6PrefixLen),
		positive("MaxTracked", &c.MaxTracked, DefaultMaxTracked),

		positive("BruteForce.Threshold", &c.BruteForce.Threshold, DefaultBruteForceThreshold),
		window("BruteForce.Window", &c.BruteForce.Window, DefaultBruteForceWindow),
		severity("BruteForce.Severity", &c.BruteForce.Severity, DefaultBruteForceSeverity),

		window("IPSpread.Window", &c.IPSpread.Window, DefaultIPSpreadWindow),
		windows("IPSpread.Windows", &c.IPSpread.Windows, DefaultIPSpreadWindows),
		positive("IPSpread.MinNetworks", &c.IPSpread.MinNetworks, DefaultIPSpreadMinNetworks),
		positive("IPSpread.Factor", &c.IPSpread.Factor, DefaultIPSpreadFactor),
		severity("IPSpread.Severity", &c.IPSpread.Severity, DefaultIPSpreadSeverity),
		action("IPSpread.Action", c.IPSpread.Action, keyward.AnomalyActionDisableKey),

		window("UsageSpike.Window", &c.UsageSpike.Window, DefaultUsageSpikeWindow),
		windows("UsageSpike.Windows", &c.UsageSpike.Windows, DefaultUsageSpikeWindows),
		positive("UsageSpike.Factor", &c.UsageSpike.Factor, DefaultUsageSpikeFactor),
		positive("UsageSpike.Minimum", &c.UsageSpike.Minimum, DefaultUsageSpikeMinimum),
		severity("UsageSpike.Severity", &c.UsageSpike.Severity, DefaultUsageSpikeSeverity),
		action("UsageSpike.Action", c.UsageSpike.Action, keyward.AnomalyActionDisableKey),

		window("RevokedKeyUse.Window", &c.RevokedKeyUse.Window, DefaultRevokedKeyUseWindow),
		severity("RevokedKeyUse.Severity", &c.RevokedKeyUse.Severity, DefaultRevokedKeyUseSeverity),
		action("RevokedKeyUse.Action", c.RevokedKeyUse.Action, keyward.AnomalyActionBlockIP),

		positive("FailureBurst.Threshold", &c.FailureBurst.Threshold, DefaultFailureBurstThreshold),
		window("FailureBurst.Window", &c.FailureBurst.Window, DefaultFailureBurstWindow),
		severity("FailureBurst.Severity", &c.FailureBurst.Severity, DefaultFailureBurstSeverity),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	if c.IPv6PrefixLen > 128 {
		return keyward.Errorf(keyward.EINVALID, "abuse: Config.IPv6PrefixLen is %d; it must be 1 to 128 (default %d)", c.IPv6PrefixLen, DefaultIPv6PrefixLen)
	}
	allow := make([]netip.Prefix, len(c.AllowList))
	for i, p := range c.AllowList {
		if !p.IsValid() {
			return keyward.Errorf(keyward.EINVALID, "abuse: Config.AllowList[%d] is not a valid network", i)
		}
		allow[i] = p.Masked()
	}
	c.AllowList = keyward.SortPrefixes(allow)
	proxies := make([]netip.Prefix, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		if !p.IsValid() {
			return keyward.Errorf(keyward.EINVALID, "abuse: Config.TrustedProxies[%d] is not a valid network", i)
		}
		proxies[i] = p.Masked()
	}
	c.TrustedProxies = keyward.SortPrefixes(proxies)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

func positive[T int | int64 | float64](field string, v *T, def T) error {
	switch {
	case !(*v >= 0): // NaN too
		return keyward.Errorf(keyward.EINVALID, "abuse: Config.%s is %v; it must be positive (or zero for the default %v)", field, *v, def)
	case *v == 0:
		*v = def
	}
	return nil
}

func duration(field string, v *time.Duration, def time.Duration) error {
	return positive(field, (*int64)(v), int64(def))
}

// window checks a window (or block) length: counters keep whole
// milliseconds, and shorter windows make no sense for these rules.
func window(field string, v *time.Duration, def time.Duration) error {
	if *v < 0 || (*v > 0 && *v < time.Second) {
		return keyward.Errorf(keyward.EINVALID, "abuse: Config.%s is %v; it must be at least 1s (or zero for the default %v)", field, *v, def)
	}
	if *v == 0 {
		*v = def
	}
	*v = v.Truncate(time.Millisecond)
	return nil
}

func windows(field string, v *int, def int) error {
	if *v > MaxWindows {
		return keyward.Errorf(keyward.EINVALID, "abuse: Config.%s is %d; it must be at most %d (or zero for the default %d)", field, *v, MaxWindows, def)
	}
	return positive(field, v, def)
}

func severity(field string, v *keyward.Severity, def keyward.Severity) error {
	switch {
	case *v == "":
		*v = def
	case !v.Valid():
		return keyward.Errorf(keyward.EINVALID, "abuse: Config.%s is %q; use low, medium or high (or empty for the default %s)", field, *v, def)
	}
	return nil
}

// action checks that a is none or the one action the rule supports.
func action(field string, a, supported keyward.AnomalyAction) error {
	if a != keyward.AnomalyActionNone && a != supported {
		return keyward.Errorf(keyward.EINVALID, "abuse: Config.%s is %q; use %s or leave it empty for none", field, a, supported)
	}
	return nil
}
