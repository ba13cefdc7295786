#include "textflag.h"

// func rdpid() uint32
TEXT ·rdpid(SB), NOSPLIT, $0-4
	// RDPID RAX (F3 0F C7 /7), spelled out for assemblers without it.
	BYTE	$0xF3; BYTE $0x0F; BYTE $0xC7; BYTE $0xF8
	MOVL	AX, ret+0(FP)
	RET

// func rdtscpAux() uint32
TEXT ·rdtscpAux(SB), NOSPLIT, $0-4
	RDTSCP
	MOVL	CX, ret+0(FP)
	RET

// func cpuid(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL	leaf+0(FP), AX
	MOVL	sub+4(FP), CX
	CPUID
	MOVL	AX, a+8(FP)
	MOVL	BX, b+12(FP)
	MOVL	CX, c+16(FP)
	MOVL	DX, d+20(FP)
	RET

// func lslCPU() uint32
TEXT ·lslCPU(SB), NOSPLIT, $0-4
	MOVL	$0x7b, CX // the kernel's per-CPU segment: GDT entry 15, RPL 3
	XORL	AX, AX    // left at 0 when the selector is not valid
	// LSL EAX, ECX (0F 03 /r), spelled out.
	BYTE	$0x0F; BYTE $0x03; BYTE $0xC1
	MOVL	AX, ret+0(FP)
	RET
