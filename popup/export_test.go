package popup

// DedupeLen is the number of keys d remembers, for tests.
func DedupeLen(d *Deduper) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.m)
}
