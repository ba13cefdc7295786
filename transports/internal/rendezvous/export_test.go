package rendezvous

import "time"

// SetFetchTimeout replaces the bound of Fetch's wait for a channel
// (AttachTimeout) until the test ends.
func SetFetchTimeout(t interface{ Cleanup(func()) }, d time.Duration) {
	old := fetchTimeout
	fetchTimeout = d
	t.Cleanup(func() { fetchTimeout = old })
}
