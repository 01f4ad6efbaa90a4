package testenv

import (
	"testing"
	"time"
)

// PollEvery is how often WaitFor asks again.
const PollEvery = 50 * time.Millisecond

// WaitFor asks cond until it says done, and fails the test when within
// passes first, with what it waited for and cond's last answer (the state
// it saw, or the error it got): the one polling loop of the tests, so a
// slow machine needs one deadline changed, not twenty loops.
func WaitFor(t testing.TB, what string, within time.Duration, cond func() (done bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		done, last := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			if last == "" {
				last = "no answer"
			}
			t.Fatalf("waited %s for %s; last: %s", within, what, last)
		}
		time.Sleep(PollEvery)
	}
}
