package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/keystore"
	"github.com/spf13/cobra"
)

// importChunkBytes bounds the JSON of the entries of one import request,
// well below the API's body limit (httpapi.MaxBodyBytes, 1 MiB).
const importChunkBytes = 512 << 10

func (a *app) keysImportCommand() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "import FILE|- [--dry-run]",
		Short: "Import keys hashed elsewhere, as SHA-256 digests with their identities",
		Long: `Import keys that another system issued and kept only as SHA-256 hex digests
(a keystore file, say). They verify from then on; on its first successful
verification keyward re-hashes each with its pepper and removes the digest.

FILE ("-" for stdin) is JSON lines, one key per line:

  {"sha256": "<64 hex>", "name": "ci", "role": "user", "account": "acme", "user": "alice",
   "permissions": ["memories:read"], "meta": {"plan": "pro"}, "expires_at": "2027-01-01T00:00:00Z"}

or a keystore file of the simple mode (keys: {<sha256>: {id, role, account,
permissions, meta}}), whose ids become the keys' names. account is an account's
id or name, user a user's id or external id; role defaults to user when user
is set. Blank lines and lines beginning with # are skipped.

Needs a root key in --api-key. The whole file is checked first (by the server
too: accounts, users, digests already imported); a bad entry is reported by its
line and nothing is imported. --dry-run stops after the check. Prints the keys
created, with their ids, and the counts of imported keys still waiting for
their first use. See docs/importing-keys.md.`,
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, entries, err := a.readImportFile(args[0])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := importKeys(cmd.Context(), c, name, entries, dryRun)
			if err != nil {
				return err
			}
			return a.show(res, func(w io.Writer) error {
				verb := "imported"
				if dryRun {
					verb = "checked (dry run, nothing imported)"
				}
				fmt.Fprintf(w, "%s: %d keys %s; imported keys waiting for their first use: %d, adopted: %d\n",
					name, len(res.Imported), verb, res.Counts.Pending, res.Counts.Adopted)
				if dryRun {
					return nil
				}
				t := newTable(w, "LINE", "ID", "NAME")
				for _, k := range res.Imported {
					t.row(strconv.Itoa(k.Line), k.ID, k.Name)
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the file with the server and import nothing")
	return cmd
}

// readImportFile parses the import file at path, "-" meaning stdin; it
// returns the name to use in messages.
func (a *app) readImportFile(path string) (string, []keyward.KeyImportEntry, error) {
	if path == "-" {
		in := a.m.Stdin
		if in == nil {
			in = os.Stdin
		}
		entries, err := keystore.ParseImport(in, "stdin")
		return "stdin", entries, err
	}
	f, err := os.Open(path)
	if err != nil {
		return path, nil, usageErrorf("%v", err)
	}
	defer f.Close()
	entries, err := keystore.ParseImport(f, path)
	return path, entries, err
}

// importKeys sends entries in requests of at most keyward.MaxImportKeys
// entries and importChunkBytes. When there is more than one, every request
// is first sent as a dry run, so a bad entry anywhere imports nothing.
func importKeys(ctx context.Context, c *client.Client, name string, entries []keyward.KeyImportEntry, dryRun bool) (*keyward.KeyImportResult, error) {
	chunks, err := importChunks(entries)
	if err != nil {
		return nil, err
	}
	if len(chunks) > 1 || dryRun {
		for _, ch := range chunks {
			if _, err := c.ImportKeys(ctx, keyward.KeyImportRequest{Keys: ch, DryRun: true}); err != nil {
				return nil, importFileError(name, err)
			}
		}
	}
	all := &keyward.KeyImportResult{Imported: make([]keyward.ImportedKey, 0, len(entries))}
	for _, ch := range chunks {
		res, err := c.ImportKeys(ctx, keyward.KeyImportRequest{Keys: ch, DryRun: dryRun})
		if err != nil {
			err = importFileError(name, err)
			if n := len(all.Imported); n > 0 {
				return nil, fmt.Errorf("after %d of %d keys were imported (the entries up to line %d; remove them before importing again): %w",
					n, len(entries), all.Imported[n-1].Line, err)
			}
			return nil, err
		}
		all.Imported = append(all.Imported, res.Imported...)
		all.Counts = res.Counts
	}
	return all, nil
}

// importChunks splits entries into requests the API accepts.
func importChunks(entries []keyward.KeyImportEntry) ([][]keyward.KeyImportEntry, error) {
	var chunks [][]keyward.KeyImportEntry
	start, size := 0, 0
	for i, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", e.Line, err)
		}
		if len(b) > importChunkBytes {
			return nil, keyward.Errorf(keyward.EINVALID, "line %d: the entry is larger than %d KiB as JSON: shorten its meta", e.Line, importChunkBytes>>10)
		}
		if i > start && (i-start == keyward.MaxImportKeys || size+len(b) > importChunkBytes) {
			chunks = append(chunks, entries[start:i])
			start, size = i, 0
		}
		size += len(b) + 1
	}
	return append(chunks, entries[start:]), nil
}

// importFileError names the file in an error the server gave about one of
// its entries.
func importFileError(name string, err error) error {
	switch code := keyward.ErrorCode(err); code {
	case keyward.EINVALID, keyward.ENOTFOUND, keyward.ECONFLICT:
		return keyward.Errorf(code, "%s: %s", name, keyward.ErrorMessage(err))
	}
	return err
}
