package proc

// AllowStartFromPeer lets this process start peers although it was itself
// started as one, for the helper peer that starts a grandchild
// (TestParentDeath); see CheckStart.
func AllowStartFromPeer() { startFromPeer.Store(true) }
