//go:build race

package verify_test

// raceEnabled: the race detector adds allocations of its own, so
// allocation counts are meaningless under it.
const raceEnabled = true
