package main

import (
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// buildInfo describes the binary.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func (a *app) buildInfo() buildInfo {
	b := buildInfo{Version: a.m.Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				b.Commit = s.Value
			}
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

func (a *app) version() string { return a.buildInfo().Version }

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of keyward",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := a.buildInfo()
			return a.show(b, func(w io.Writer) error {
				return fields(w, "version", b.Version, "commit", b.Commit, "go", b.GoVersion, "platform", b.Platform)
			})
		},
	}
}
