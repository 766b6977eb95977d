package flight

// SetWaitingHook sets testHookWaiting (nil to clear it).
func SetWaitingHook(f func(key string)) { testHookWaiting = f }
