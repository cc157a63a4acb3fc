package watcher

import "time"

// SetBusyRetry shrinks the budget-refusal backoff for a test and returns
// the function that restores it.
func SetBusyRetry(min, max time.Duration) (restore func()) {
	oldMin, oldMax := busyRetryMin, busyRetryMax
	busyRetryMin, busyRetryMax = min, max
	return func() { busyRetryMin, busyRetryMax = oldMin, oldMax }
}
