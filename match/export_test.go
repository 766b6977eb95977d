package match

// CacheLen is the number of entries in c, for tests.
func CacheLen(c *Cached) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// SetMissHook sets a function run between a cache miss and the lookup.
func SetMissHook(f func()) { testHookMiss = f }
