//go:build race

package jsonstore

// raceEnabled scales down tests whose cost the race detector multiplies.
const raceEnabled = true
