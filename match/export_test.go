package match

// CacheLen is the number of entries in c, for tests.
func CacheLen(c *Cached) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// SetMissHook sets a function run between a cache miss and the lookup.
func SetMissHook(f func()) { testHookMiss = f }

// Unmemoized returns a copy of n that remembers nothing, for tests.
func Unmemoized(n *Normalizer) *Normalizer { return &Normalizer{region: n.region} }

// MemoLen is the number of inputs n remembers, for tests.
func MemoLen(n *Normalizer) int {
	n.memo.mu.Lock()
	defer n.memo.mu.Unlock()
	return len(n.memo.cur) + len(n.memo.old)
}

// SetMemoSize bounds n's memory to size inputs per generation, for tests.
func SetMemoSize(n *Normalizer, size int) { n.memo = newPhoneMemo(size) }
