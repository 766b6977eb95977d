package cti

import (
	"testing"
	"unsafe"
)

// TestConvSizeClass guards the conv's size: it is the one long-lived
// object per conversation, and past 1536 B (a size class boundary) it
// costs 256 B more per live conversation, amid garbage of the next class.
func TestConvSizeClass(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("64-bit layout")
	}
	if n := unsafe.Sizeof(conv{}); n > 1536 {
		t.Fatalf("conv is %d B, past the 1536 B size class", n)
	}
}
