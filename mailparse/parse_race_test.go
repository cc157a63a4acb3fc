//go:build race

package mailparse

// raceEnabled scales down tests whose cost the race detector multiplies.
const raceEnabled = true
