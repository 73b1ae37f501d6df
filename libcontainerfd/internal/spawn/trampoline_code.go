package spawn

import "encoding/binary"

// The trampolines (see trampoline.go), by GOARCH: all are kept in every
// build, so that tests can run each one (under qemu-user where it is not
// the machine's).
var trampolines = map[string]trampolineArch{
	"amd64": {machine: 62 /* EM_X86_64 */, code: trampolineAMD64, stageOff: 0x67},
	"arm64": {machine: 183 /* EM_AARCH64 */, code: trampolineARM64, stageOff: len(trampolineARM64) - 4},
}

type trampolineArch struct {
	machine  uint16 // ELF e_machine
	code     []byte
	stageOff int // where the code holds the 32-bit step number it reports
}

// x86-64, as GNU as assembles it (intel syntax):
//
//	_start:  mov   rcx, [rsp]              ; argc
//	         cmp   rcx, 3
//	         jb    bad
//	         mov   rsi, [rsp+8]            ; argv[0]: the report fd, in decimal
//	         xor   edi, edi
//	         cmp   byte ptr [rsi], 0
//	         je    bad
//	digit:   movzx eax, byte ptr [rsi]
//	         test  al, al
//	         jz    parsed
//	         sub   eax, 0x30
//	         cmp   eax, 9
//	         ja    bad
//	         imul  edi, edi, 10
//	         add   edi, eax
//	         inc   rsi
//	         jmp   digit
//	parsed:  mov   r12d, edi               ; fcntl(fd, F_SETFD, FD_CLOEXEC)
//	         mov   esi, 2
//	         mov   edx, 1
//	         mov   eax, 72
//	         syscall
//	         mov   rcx, [rsp]              ; execve(argv[1], &argv[2], envp)
//	         mov   rdi, [rsp+16]
//	         lea   rsi, [rsp+24]
//	         lea   rdx, [rsp+rcx*8+16]
//	         mov   eax, 59
//	         syscall
//	         neg   eax                     ; write(fd, {stage, errno}, 8)
//	         mov   [rsp-4], eax
//	         mov   dword ptr [rsp-8], STAGE
//	         mov   edi, r12d
//	         lea   rsi, [rsp-8]
//	         mov   edx, 8
//	         mov   eax, 1
//	         syscall
//	bad:     mov   edi, 127                ; exit_group(127)
//	         mov   eax, 231
//	         syscall
var trampolineAMD64 = []byte{
	0x48, 0x8b, 0x0c, 0x24, 0x48, 0x83, 0xf9, 0x03, 0x72, 0x75, 0x48, 0x8b,
	0x74, 0x24, 0x08, 0x31, 0xff, 0x80, 0x3e, 0x00, 0x74, 0x69, 0x0f, 0xb6,
	0x06, 0x84, 0xc0, 0x74, 0x12, 0x83, 0xe8, 0x30, 0x83, 0xf8, 0x09, 0x77,
	0x5a, 0x6b, 0xff, 0x0a, 0x01, 0xc7, 0x48, 0xff, 0xc6, 0xeb, 0xe7, 0x41,
	0x89, 0xfc, 0xbe, 0x02, 0x00, 0x00, 0x00, 0xba, 0x01, 0x00, 0x00, 0x00,
	0xb8, 0x48, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x8b, 0x0c, 0x24, 0x48,
	0x8b, 0x7c, 0x24, 0x10, 0x48, 0x8d, 0x74, 0x24, 0x18, 0x48, 0x8d, 0x54,
	0xcc, 0x10, 0xb8, 0x3b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xf7, 0xd8, 0x89,
	0x44, 0x24, 0xfc, 0xc7, 0x44, 0x24, 0xf8, 0x44, 0x33, 0x22, 0x11, 0x44,
	0x89, 0xe7, 0x48, 0x8d, 0x74, 0x24, 0xf8, 0xba, 0x08, 0x00, 0x00, 0x00,
	0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x7f, 0x00, 0x00, 0x00,
	0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05,
}

// AArch64, as GNU as assembles it:
//
//	_start:  ldr   x9, [sp]                // argc
//	         cmp   x9, #3
//	         b.lo  bad
//	         ldr   x1, [sp, #8]            // argv[0]: the report fd, in decimal
//	         mov   w19, #0
//	         ldrb  w2, [x1]
//	         cbz   w2, bad
//	digit:   ldrb  w2, [x1], #1
//	         cbz   w2, parsed
//	         sub   w2, w2, #0x30
//	         cmp   w2, #9
//	         b.hi  bad
//	         mov   w3, #10
//	         madd  w19, w19, w3, w2
//	         b     digit
//	parsed:  mov   w0, w19                 // fcntl(fd, F_SETFD, FD_CLOEXEC)
//	         mov   x1, #2
//	         mov   x2, #1
//	         mov   x8, #25
//	         svc   #0
//	         ldr   x0, [sp, #16]           // execve(argv[1], &argv[2], envp)
//	         add   x1, sp, #24
//	         add   x2, sp, x9, lsl #3
//	         add   x2, x2, #16
//	         mov   x8, #221
//	         svc   #0
//	         neg   w0, w0                  // write(fd, {stage, errno}, 8)
//	         ldr   w1, stage
//	         stp   w1, w0, [sp, #-16]!
//	         mov   w0, w19
//	         mov   x1, sp
//	         mov   x2, #8
//	         mov   x8, #64
//	         svc   #0
//	bad:     mov   x0, #127                // exit_group(127)
//	         mov   x8, #94
//	         svc   #0
//	stage:   .word STAGE
var trampolineARM64 = words(
	0xf94003e9, 0xf1000d3f, 0x54000403, 0xf94007e1,
	0x52800013, 0x39400022, 0x34000382, 0x38401422,
	0x340000e2, 0x5100c042, 0x7100245f, 0x540002e8,
	0x52800143, 0x1b030a73, 0x17fffff9, 0x2a1303e0,
	0xd2800041, 0xd2800022, 0xd2800328, 0xd4000001,
	0xf9400be0, 0x910063e1, 0x8b296fe2, 0x91004042,
	0xd2801ba8, 0xd4000001, 0x4b0003e0, 0x18000141,
	0x29be03e1, 0x2a1303e0, 0x910003e1, 0xd2800102,
	0xd2800808, 0xd4000001, 0xd2800fe0, 0xd2800bc8,
	0xd4000001, 0x00000000,
)

func words(ws ...uint32) []byte {
	var b []byte
	for _, w := range ws {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}
