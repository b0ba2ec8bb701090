/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The end-to-end guest: a 64 KiB image loaded with -bios, so QEMU maps it
 * just below 4 GiB and the CPU starts at its last 16 bytes (reset vector,
 * CS base 0xffff0000, IP 0xfff0).  It enters 32-bit protected mode with
 * flat segments (the test memory is above 1 MiB), writes a pattern to
 * NPAGES pages of plain RAM and of the non-coherent backend, reads both
 * back, and reports through isa-debug-exit (iobase 0xf4): QEMU exits with
 * status (value << 1) | 1, i.e. 33 when every word read back matched, 65
 * when one did not.  Each first write to a page makes KVM map it, which
 * the kvm_mmu_set_spte event shows with the memory type KVM chose.
 *
 * Built with `as --32` and `ld -m elf_i386 -Ttext=0 -e 0 --oformat binary`;
 * PLAIN_GPA, NC_GPA and NPAGES are given with --defsym.
 */
	.set	BASE, 0xffff0000	/* where the image's first byte is */
	.set	DEBUG_EXIT, 0xf4
	.set	EXIT_OK, 0x10
	.set	EXIT_MISMATCH, 0x20
	.set	PATTERN, 0x5a17c0de

	.text
	.code16
start:
	cli
	/* CS base is still 0xffff0000, so CS-relative offsets are image offsets. */
	lgdtl	%cs:gdt_desc
	movl	%cr0, %eax
	orl	$1, %eax
	movl	%eax, %cr0
	ljmpl	$0x08, $(BASE + pm32)

	.code32
pm32:
	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movl	$0x8000, %esp		/* plain RAM below PLAIN_GPA */

	movl	$PLAIN_GPA, %edi
	call	fill
	movl	$NC_GPA, %edi
	call	fill
	movl	$PLAIN_GPA, %edi
	call	check
	jne	bad
	movl	$NC_GPA, %edi
	call	check
	jne	bad
	movb	$EXIT_OK, %al
	outb	%al, $DEBUG_EXIT
	jmp	halt
bad:
	movb	$EXIT_MISMATCH, %al
	outb	%al, $DEBUG_EXIT
halt:
	hlt
	jmp	halt

/* Write PATTERN ^ address to the first word of NPAGES pages from %edi. */
fill:
	movl	$NPAGES, %ecx
1:	movl	%edi, %eax
	xorl	$PATTERN, %eax
	movl	%eax, (%edi)
	addl	$4096, %edi
	loop	1b
	ret

/* ZF set when every page from %edi still holds what fill wrote. */
check:
	movl	$NPAGES, %ecx
1:	movl	%edi, %eax
	xorl	$PATTERN, %eax
	cmpl	%eax, (%edi)
	jne	2f
	addl	$4096, %edi
	loop	1b
	xorl	%eax, %eax		/* sets ZF */
2:	ret

	.p2align 3
gdt:
	.quad	0			/* null */
	.quad	0x00cf9b000000ffff	/* 0x08: code, base 0, 4 GiB, 32-bit */
	.quad	0x00cf93000000ffff	/* 0x10: data, base 0, 4 GiB */
gdt_end:
gdt_desc:
	.word	gdt_end - gdt - 1
	.long	BASE + gdt

	/* The reset vector. */
	.org	0xfff0
	.code16
	jmp	start
	.org	0x10000
