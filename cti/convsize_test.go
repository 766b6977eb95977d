package cti

import (
	"testing"
	"unsafe"
)

// TestConvSizeClass guards the conv's size: it is the one long-lived
// object per conversation, and past the 1536 B size class it costs
// 256 B more per live conversation, amid garbage of the next class. An
// object of more than 512 B that holds pointers carries an 8-byte header
// in its allocation (Go 1.22 on), so the struct itself must stay within
// 1528 B: at 1536 (ff45838 added a bool) figure 4's heap in use grew
// from 3.75 to 4.9 KB per conversation.
func TestConvSizeClass(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("64-bit layout")
	}
	const class, header = 1536, 8
	if n := unsafe.Sizeof(conv{}); n > class-header {
		t.Fatalf("conv is %d B: with its %d B allocation header past the %d B size class", n, header, class)
	}
}
