package main

import (
	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

// pageFlags adds --limit and --after to a list command.
func pageFlags(cmd *cobra.Command, p *keyward.Page) {
	cmd.Flags().IntVar(&p.Limit, "limit", 0, "page size (default 100, at most 1000)")
	cmd.Flags().StringVar(&p.After, "after", "", "cursor: list after this id (the \"next\" of the previous page)")
}
