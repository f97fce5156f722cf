// Package providertest starts real provider systems (Gitea, n8n) on
// loopback for tests, each fresh in t.TempDir() and stopped when the test
// ends. Their binaries come from e2e/provision's cache; a test skips with a
// message saying how to provision them when they are absent, and fails
// instead when CI is true. It is imported only by tests.
package providertest
