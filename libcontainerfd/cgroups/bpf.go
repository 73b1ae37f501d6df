package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The few bpf(2) calls the device program needs, made directly: a library
// such as cilium/ebpf probes the kernel's features and reads mountinfo at
// each load, and its package initialisation and size cost every process of
// ours, stages included, ~1 ms of CPU and ~1 MB of RSS.

// bpfInsn is one eBPF instruction, as struct bpf_insn.
type bpfInsn struct {
	Code uint8
	Regs uint8 // dst in the low four bits, src in the high four
	Off  int16
	Imm  int32
}

// Registers.
const (
	bpfR0 uint8 = iota
	bpfR1
	bpfR2
	bpfR3
	bpfR4
	bpfR5
)

// ldxW loads the u32 at src+off into dst.
func ldxW(dst, src uint8, off int16) bpfInsn {
	return bpfInsn{Code: unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W, Regs: dst | src<<4, Off: off}
}

// alu32Imm is dst = dst op imm, 32-bit (op a BPF_ALU operation: BPF_AND,
// BPF_RSH, BPF_MOV …).
func alu32Imm(op, dst uint8, imm int32) bpfInsn {
	return bpfInsn{Code: unix.BPF_ALU | op | unix.BPF_K, Regs: dst, Imm: imm}
}

// mov32Reg is dst = src, 32-bit.
func mov32Reg(dst, src uint8) bpfInsn {
	return bpfInsn{Code: unix.BPF_ALU | unix.BPF_MOV | unix.BPF_X, Regs: dst | src<<4}
}

// jmp32Imm jumps off instructions ahead if dst op imm, 32-bit (op BPF_JNE,
// BPF_JEQ …); jmp32Reg compares with src instead.
func jmp32Imm(op, dst uint8, imm int32, off int16) bpfInsn {
	return bpfInsn{Code: unix.BPF_JMP32 | op | unix.BPF_K, Regs: dst, Off: off, Imm: imm}
}

func jmp32Reg(op, dst, src uint8, off int16) bpfInsn {
	return bpfInsn{Code: unix.BPF_JMP32 | op | unix.BPF_X, Regs: dst | src<<4, Off: off}
}

// exit returns R0.
func exit() bpfInsn { return bpfInsn{Code: unix.BPF_JMP | unix.BPF_EXIT} }

// bpfCall makes the bpf(2) call cmd. The attr structs below hold their
// pointers as unsafe.Pointer, which the runtime updates if the stack moves
// (as a uintptr it would not); 8 bytes, as the kernel's __aligned_u64, on
// the 64-bit little-endian platforms we build for (bpfInsn.Regs, too, is
// laid out for little-endian).
func bpfCall(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
		switch errno {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		}
		return -1, errno
	}
}

// bpfProgLoad loads a program and returns its fd (O_CLOEXEC, as every bpf
// fd). If the kernel refuses it, the error carries the verifier's last
// words.
func bpfProgLoad(typ uint32, name, license string, insns []bpfInsn) (int, error) {
	type progLoadAttr struct {
		progType, insnCnt         uint32
		insns, license            unsafe.Pointer
		logLevel, logSize         uint32
		logBuf                    unsafe.Pointer
		kernVersion, progFlags    uint32
		progName                  [16]byte
		progIfindex, expectedType uint32
	}
	lic := append([]byte(license), 0)
	attr := progLoadAttr{
		progType: typ,
		insnCnt:  uint32(len(insns)),
		insns:    unsafe.Pointer(&insns[0]),
		license:  unsafe.Pointer(&lic[0]),
	}
	copy(attr.progName[:len(attr.progName)-1], name)
	fd, err := bpfCall(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	for tries := 0; err == unix.EAGAIN && tries < 5; tries++ {
		fd, err = bpfCall(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	}
	if err != nil {
		// Again, for the verifier's log.
		log := make([]byte, 64<<10)
		attr.logLevel, attr.logSize = 1, uint32(len(log))
		attr.logBuf = unsafe.Pointer(&log[0])
		if fd, lerr := bpfCall(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); lerr == nil {
			unix.Close(fd)
		}
		log, _, _ = bytes.Cut(log, []byte{0})
		if lines := bytes.Split(bytes.TrimSpace(log), []byte("\n")); len(lines[0]) > 0 {
			err = fmt.Errorf("%w (verifier: %s)", err, lines[len(lines)-1])
		}
	}
	runtime.KeepAlive(insns)
	runtime.KeepAlive(lic)
	return fd, err
}

// bpfProgAttach attaches (cmd BPF_PROG_ATTACH) or detaches (BPF_PROG_DETACH)
// prog to or from target; with BPF_F_REPLACE, in place of replace.
func bpfProgAttach(cmd, target, prog int, attachType, flags uint32, replace int) error {
	attr := struct {
		targetFD, attachBPFFD, attachType, attachFlags, replaceBPFFD uint32
	}{uint32(target), uint32(prog), attachType, flags, 0}
	if replace >= 0 {
		attr.replaceBPFFD = uint32(replace)
	}
	_, err := bpfCall(cmd, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// bpfProgQuery returns the ids of the programs of attachType attached to
// target itself.
func bpfProgQuery(target int, attachType uint32) ([]uint32, error) {
	ids := make([]uint32, 16)
	for {
		attr := struct {
			targetFD, attachType, queryFlags, attachFlags uint32
			progIDs                                       unsafe.Pointer
			progCnt                                       uint32
			_                                             uint32
		}{targetFD: uint32(target), attachType: attachType, progIDs: unsafe.Pointer(&ids[0]), progCnt: uint32(len(ids))}
		_, err := bpfCall(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
		if errors.Is(err, unix.ENOSPC) && int(attr.progCnt) > len(ids) {
			ids = make([]uint32, attr.progCnt)
			continue
		}
		if err != nil {
			return nil, err
		}
		return ids[:attr.progCnt], nil
	}
}

// bpfProgByID opens the program with id.
func bpfProgByID(id uint32) (int, error) {
	attr := struct{ id, nextID, openFlags uint32 }{id: id}
	return bpfCall(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
}

// bpfProgInfo returns the type and name of the program open as fd.
func bpfProgInfo(fd int) (uint32, string, error) {
	// struct bpf_prog_info up to its name.
	var info struct {
		typ, id                 uint32
		tag                     [8]byte
		jitedLen, xlatedLen     uint32
		jited, xlated, loadTime uint64
		createdByUID, nrMapIDs  uint32
		mapIDs                  uint64
		name                    [16]byte
	}
	attr := struct {
		fd, infoLen uint32
		info        unsafe.Pointer
	}{uint32(fd), uint32(unsafe.Sizeof(info)), unsafe.Pointer(&info)}
	if _, err := bpfCall(unix.BPF_OBJ_GET_INFO_BY_FD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return 0, "", err
	}
	n, _, _ := bytes.Cut(info.name[:], []byte{0})
	return info.typ, string(n), nil
}
