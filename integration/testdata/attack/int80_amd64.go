package main

// int80 makes system call nr through the i386 ABI (int $0x80) and returns
// what the kernel left in eax.
func int80(nr, a1, a2 uintptr) uintptr
