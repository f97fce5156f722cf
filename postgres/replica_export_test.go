package postgres

// ReplicaCounts returns, summed over the replicas, the key lookups sent to
// them, those they did not find and those they failed.
func ReplicaCounts(s *Store) (lookups, misses, fallbacks uint64) {
	for _, r := range s.replicas.reps {
		lookups += r.lookups.Load()
		misses += r.misses.Load()
		fallbacks += r.fallbacks.Load()
	}
	return lookups, misses, fallbacks
}
