package rfenv

// SetDownLocking sets the hook that runs just before Down takes an environment's lock.
func SetDownLocking(f func(name string)) (restore func()) {
	old := downLocking
	downLocking = f
	return func() { downLocking = old }
}
