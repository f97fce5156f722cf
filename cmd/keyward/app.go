package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
	"github.com/spf13/cobra"
)

// Exit codes. Scripts can tell these apart; docs/cli.md lists them.
const (
	ExitOK           = 0
	ExitError        = 1 // anything else: an internal error
	ExitUsage        = 2 // bad command line or invalid input
	ExitConfig       = 3 // invalid configuration (fail closed)
	ExitUnauthorized = 4 // no API key, or one that was refused
	ExitForbidden    = 5 // the API key may not do this
	ExitNotFound     = 6
	ExitConflict     = 7 // e.g. the name is taken, a usable root key exists
	ExitUnavailable  = 8 // keyward cannot be reached, or asks to retry later
	ExitKeyInvalid   = 9 // verify: the key is not valid
	// ExitShutdown: serve or gateway stopped on a signal, but not
	// cleanly: requests still in flight at shutdown_timeout were cut off,
	// or the final write of key usage, usage counts or credits failed.
	ExitShutdown = 10
)

// Main is the keyward program. Tests run it in process; main runs it with
// the real environment.
type Main struct {
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// Stdin is read by commands given "-" for a key; nil means os.Stdin.
	Stdin io.Reader
	// Listening, if set, is called by serve with the address it accepts
	// connections on (useful with port 0).
	Listening func(addr string)
	// Version is reported by "keyward version" and /healthz; empty means
	// the module version from the build information.
	Version string
}

// app is the state of one Run: its streams and global flags.
type app struct {
	m       *Main
	stdout  io.Writer
	stderr  io.Writer
	getenv  func(string) string
	started bool // a command got past argument parsing

	output string // table or json
	url    string
	apiKey string
	agent  string
}

// Run runs keyward with args (without the program name) and returns the
// exit code. Errors are printed to stderr as one line "keyward: <message>".
func (m *Main) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{m: m, stdout: stdout, stderr: stderr, getenv: m.Getenv}
	if a.getenv == nil {
		a.getenv = os.Getenv
	}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code, msg := a.describe(cmd, err)
	fmt.Fprintf(stderr, "keyward: %s\n", oneLine(msg))
	return code
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "keyward",
		Short: "keyward issues, verifies and manages API keys",
		Long: `keyward is a self-hosted API key service.

Run "keyward serve" to start the server; the other commands are clients of its
HTTP API, configured by --url/KEYWARD_URL and --api-key/KEYWARD_API_KEY.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// Required flags are checked after this hook: check them
			// here so a missing flag is a usage error.
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return &usageError{err: err}
			}
			if err := cmd.ValidateFlagGroups(); err != nil {
				return &usageError{err: err}
			}
			a.started = true
			if a.output != "table" && a.output != "json" && a.output != "csv" {
				return usageErrorf("--output %q: use table or json (or csv for keyward report)", a.output)
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	pf := root.PersistentFlags()
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json (csv for keyward report)")
	pf.String("config", "", "configuration file (env KEYWARD_CONFIG; default ./keyward.yaml if present)")

	root.AddCommand(
		a.serveCommand(),
		a.bootstrapCommand(),
		a.accountsCommand(),
		a.usersCommand(),
		a.rolesCommand(),
		a.portalCommand(),
		a.keysCommand(),
		a.ipRulesCommand(),
		a.leaksCommand(),
		a.webhooksCommand(),
		a.providersCommand(),
		a.credentialsCommand(),
		a.rotationPolicyCommand(),
		a.creditsCommand(),
		a.limitsCommand(),
		a.anomaliesCommand(),
		a.auditCommand(),
		a.jobsCommand(),
		a.reportCommand(),
		a.verifyCommand(),
		a.whoamiCommand(),
		a.configCommand(),
		a.keystoreCommand(),
		a.gatewayCommand(),
		a.migrateCommand(),
		a.backupCommand(),
		a.rekeyCommand(),
		a.devCommand(),
		a.versionCommand(),
		a.healthcheckCommand(),
	)
	return root
}

// addClientFlags defines the flags of the commands that talk to a server.
func (a *app) addClientFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&a.url, "url", "", "keyward server URL (env KEYWARD_URL; default "+client.DefaultURL+")")
	f.StringVar(&a.apiKey, "api-key", "", "API key to authenticate with (env KEYWARD_API_KEY, preferred: flags show in ps)")
	f.StringVar(&a.agent, "agent", "", "agent name sent as X-Keyward-Agent (env KEYWARD_AGENT)")
}

// client returns the HTTP client of the client commands.
func (a *app) client() (*client.Client, error) {
	url := firstNonEmpty(a.url, a.getenv("KEYWARD_URL"), client.DefaultURL)
	key := firstNonEmpty(a.apiKey, a.getenv("KEYWARD_API_KEY"))
	if key == "" {
		return nil, keyward.Errorf(keyward.EUNAUTHORIZED, "no API key: set KEYWARD_API_KEY or pass --api-key")
	}
	c := client.New(url, keyward.Secret(key))
	c.Agent = firstNonEmpty(a.agent, a.getenv("KEYWARD_AGENT"))
	return c, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// usageError is a mistake on the command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// exitError carries an exit code decided by a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func (e *exitError) Unwrap() error { return e.err }

// describe maps err to an exit code and a message.
func (a *app) describe(cmd *cobra.Command, err error) (int, string) {
	var (
		ue *usageError
		ee *exitError
		se *server.ShutdownError
		ce *config.Error
	)
	switch {
	case errors.As(err, &ee):
		return ee.code, ee.err.Error()
	case errors.As(err, &se):
		return ExitShutdown, se.Err.Error()
	case errors.As(err, &ce):
		return ExitConfig, ce.Error()
	case errors.Is(err, keyward.ErrSchemaTooNew):
		// server.StoreError: the binary is older than the store.
		return ExitConfig, err.Error()
	case errors.As(err, &ue) || !a.started:
		// Flag parsing, argument checks and unknown commands all fail
		// before any command starts.
		hint := "keyward --help"
		if cmd != nil {
			hint = cmd.CommandPath() + " --help"
		}
		return ExitUsage, fmt.Sprintf("%v (see %q)", err, hint)
	}
	code := ExitError
	switch keyward.ErrorCode(err) {
	case keyward.EINVALID, keyward.EQUERY, keyward.ETOOLARGE:
		code = ExitUsage
	case keyward.EUNAUTHORIZED:
		code = ExitUnauthorized
	case keyward.EFORBIDDEN:
		code = ExitForbidden
	case keyward.ENOTFOUND:
		code = ExitNotFound
	case keyward.ECONFLICT:
		code = ExitConflict
	case keyward.EUNAVAILABLE, keyward.ERATELIMITED, keyward.EUPSTREAM, keyward.EUPSTREAMTIMEOUT:
		code = ExitUnavailable
	}
	var ke *keyward.Error
	if errors.As(err, &ke) && ke.Err == nil {
		return code, ke.Message
	}
	return code, err.Error()
}

// oneLine keeps an error message on one line of stderr.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r\n", "; ")
	return strings.ReplaceAll(s, "\n", "; ")
}

// args validators returning usage errors with the argument's name.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		if len(args) < len(names) {
			return usageErrorf("missing %s", strings.Join(names[len(args):], " "))
		}
		return usageErrorf("unexpected argument %q", args[len(names)])
	}
}
