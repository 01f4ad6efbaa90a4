package directory

// The compiler, not a test run, says when SQLStore falls behind Store.
var _ Store = (*SQLStore)(nil)
