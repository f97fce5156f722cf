package main

import (
	"slices"
	"strconv"
	"strings"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/lifecycle"
	"github.com/spf13/cobra"
)

func (a *app) jobsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "Run the lifecycle jobs",
	}
	cmd.AddCommand(a.jobsRunCommand())
	return cmd
}

func (a *app) jobsRunCommand() *cobra.Command {
	var job string
	run := &cobra.Command{
		Use:   "run [--job NAME]",
		Short: "Run the lifecycle jobs once, on the store of the configuration",
		Long: `Run every lifecycle job once (expiry, rotation, cleanup, refill), or the one
named by --job, on the store of the configuration (the same settings as serve),
and print what each did. A job whose lock another instance holds is skipped.
See docs/lifecycle.md.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if job != "" && !slices.Contains(lifecycle.Jobs, job) {
				return usageErrorf("--job %q: use one of %s", job, strings.Join(lifecycle.Jobs, ", "))
			}
			cfg, err := config.Load(a.getenv, cmd.Flags())
			if err != nil {
				return err
			}
			log := cfg.Logger(a.stderr)
			c, err := server.Open(cmd.Context(), cfg, nil, log, false)
			if err != nil {
				return err
			}
			results, err := server.RunJobs(cmd.Context(), c, cfg, log, job)
			if cerr := c.Close(cmd.Context(), log); err == nil {
				err = cerr
			}
			if perr := a.printResults(results); err == nil {
				err = perr
			}
			return err
		},
	}
	run.Flags().StringVar(&job, "job", "", "run only this job: "+strings.Join(lifecycle.Jobs, ", "))
	config.AddFlags(run.Flags(), "data", "store", "redis", "pepper-file", "log-level", "log-format", "credit-ledger")
	return run
}

// printResults prints what each job run did.
func (a *app) printResults(results []lifecycle.Result) error {
	if a.output == "json" {
		return printJSON(a.stdout, results)
	}
	t := newTable(a.stdout, "JOB", "RAN", "CHANGES", "SKIPPED")
	for _, r := range results {
		var changes []string
		for _, action := range []string{"key_expired", "key_rotation_due", "key_expiry_scheduled", "key_deleted", "ip_rule_deleted", "credits_refilled"} {
			if n := r.Changes[action]; n > 0 {
				changes = append(changes, action+"="+strconv.Itoa(n))
			}
		}
		ran := yesNo(r.Ran)
		if !r.Ran {
			ran = "no (locked)"
		}
		t.row(r.Job, ran, strings.Join(changes, " "), strconv.Itoa(r.Skipped))
	}
	return t.flush()
}
