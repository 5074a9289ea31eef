package proactor

import (
	"strconv"
	"unsafe"
)

func itoa(i int) string { return strconv.Itoa(i) }

func unsafePointer[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }
