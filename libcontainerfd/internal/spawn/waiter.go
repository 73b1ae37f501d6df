package spawn

import (
	"fmt"
	"runtime"
	"sync"
)

// The waiter is a program of a few instructions in a sealed memfd that
// waits for a holder to go and then execs a program: what a group watcher
// (libcontainerfd.Watcher) runs while its holder lives, so that waiting
// costs a page or two of memory instead of a Go runtime's megabytes.
//
// It takes fd 3, the read end of a pipe whose write end the holder has,
// and fd 4, the program; argv = [any, the program's argv...]. It reads fd 3
// until end of file (the holder closed the write end, or died) or an error
// other than EINTR, then execveat(4, "", &argv[1], envp, AT_EMPTY_PATH);
// with fewer than two arguments, or when that exec fails, it exits 127.
const (
	WaiterHoldFD = 3
	WaiterExecFD = 4
)

// waiterName is the memfd's name: /proc/<pid>/exe of a waiter shows
// "/memfd:containerfd-wait (deleted)".
const waiterName = "containerfd-wait"

// The waiters, by GOARCH, as GNU as assembles them; all are kept in every
// build, so that tests can run each one.
var waiters = map[string]struct {
	machine uint16
	code    []byte
}{
	"amd64": {machine: 62, code: waiterAMD64},
	"arm64": {machine: 183, code: waiterARM64},
}

var waiter = sync.OnceValues(func() (int, error) {
	arch, ok := waiters[runtime.GOARCH]
	if !ok {
		return -1, fmt.Errorf("spawn: waiter: none for %s", runtime.GOARCH)
	}
	fd, err := sealedProgram(waiterName, staticELF(arch.machine, arch.code))
	if err != nil {
		return -1, fmt.Errorf("spawn: waiter: %w", err)
	}
	return fd, nil
})

// WaiterFD returns the waiter's fd, made once per process. It fails where
// the kernel executes no memfd (MemfdExec) or there is no waiter for the
// architecture; the caller then waits some other way.
func WaiterFD() (int, error) {
	if !MemfdExec.Available() {
		return -1, fmt.Errorf("spawn: waiter: %s not available", MemfdExec.Name())
	}
	return waiter()
}

// x86-64 (intel syntax):
//
//	_start:  cmp   qword ptr [rsp], 2       ; argc
//	         jb    bad
//	again:   xor   eax, eax                 ; read(3, rsp-8, 1)
//	         mov   edi, 3
//	         lea   rsi, [rsp-8]
//	         mov   edx, 1
//	         syscall
//	         test  rax, rax
//	         jg    again                    ; a byte is not the end
//	         cmp   rax, -4                  ; EINTR
//	         je    again
//	         mov   rcx, [rsp]               ; execveat(4, "", &argv[1], envp, AT_EMPTY_PATH)
//	         mov   edi, 4
//	         lea   rsi, [rip+empty]
//	         lea   rdx, [rsp+16]
//	         lea   r10, [rsp+rcx*8+16]
//	         mov   r8d, 0x1000
//	         mov   eax, 322
//	         syscall
//	bad:     mov   edi, 127                 ; exit_group(127)
//	         mov   eax, 231
//	         syscall
//	empty:   .byte 0
var waiterAMD64 = []byte{
	0x48, 0x83, 0x3c, 0x24, 0x02, 0x72, 0x45, 0x31, 0xc0, 0xbf, 0x03, 0x00,
	0x00, 0x00, 0x48, 0x8d, 0x74, 0x24, 0xf8, 0xba, 0x01, 0x00, 0x00, 0x00,
	0x0f, 0x05, 0x48, 0x85, 0xc0, 0x7f, 0xe8, 0x48, 0x83, 0xf8, 0xfc, 0x74,
	0xe2, 0x48, 0x8b, 0x0c, 0x24, 0xbf, 0x04, 0x00, 0x00, 0x00, 0x48, 0x8d,
	0x35, 0x23, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x54, 0x24, 0x10, 0x4c, 0x8d,
	0x54, 0xcc, 0x10, 0x41, 0xb8, 0x00, 0x10, 0x00, 0x00, 0xb8, 0x42, 0x01,
	0x00, 0x00, 0x0f, 0x05, 0xbf, 0x7f, 0x00, 0x00, 0x00, 0xb8, 0xe7, 0x00,
	0x00, 0x00, 0x0f, 0x05, 0x00,
}

// AArch64:
//
//	_start:  ldr   x9, [sp]                 // argc
//	         cmp   x9, #2
//	         b.lo  bad
//	again:   mov   x0, #3                   // read(3, sp-16, 1)
//	         sub   x1, sp, #16
//	         mov   x2, #1
//	         mov   x8, #63
//	         svc   #0
//	         cmp   x0, #0
//	         b.gt  again                    // a byte is not the end
//	         cmn   x0, #4                   // EINTR
//	         b.eq  again
//	         mov   x0, #4                   // execveat(4, "", &argv[1], envp, AT_EMPTY_PATH)
//	         adr   x1, empty
//	         add   x2, sp, #16
//	         add   x3, sp, x9, lsl #3
//	         add   x3, x3, #16
//	         mov   x4, #0x1000
//	         mov   x8, #281
//	         svc   #0
//	bad:     mov   x0, #127                 // exit_group(127)
//	         mov   x8, #94
//	         svc   #0
//	empty:   .word 0
var waiterARM64 = words(
	0xf94003e9, 0xf100093f, 0x54000243, 0xd2800060,
	0xd10043e1, 0xd2800022, 0xd28007e8, 0xd4000001,
	0xf100001f, 0x54ffff4c, 0xb100101f, 0x54ffff00,
	0xd2800080, 0x10000141, 0x910043e2, 0x8b296fe3,
	0x91004063, 0xd2820004, 0xd2802328, 0xd4000001,
	0xd2800fe0, 0xd2800bc8, 0xd4000001, 0x00000000,
)
