package app

import (
	"runtime/debug"
	"testing"
)

// TestGCPercent: a service collects at GOGC 400 unless GOGC is set.
func TestGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	tuneGC()
	if got := debug.SetGCPercent(150); got != gcPercent {
		t.Fatalf("GOGC unset: collecting at %d, want %d", got, gcPercent)
	}
	t.Setenv("GOGC", "150") // as the runtime read it at start
	tuneGC()
	if got := debug.SetGCPercent(100); got != 150 {
		t.Fatalf("GOGC=150: collecting at %d", got)
	}
}
