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
 * With HOTPLUG defined (fw-hotplug.bin), it then uses the pc-dimm the
 * driver plugged before the guest ran, and ejects it when QEMU asks, as an
 * OS's ACPI code would, through the memory hotplug controller's registers
 * (MHP_IO, QEMU's docs/specs/acpi_mem_hotplug.rst; slot 0 selected):
 * the DIMM must be enabled at DIMM_GPA (above 4 GiB, so the firmware maps
 * it at WINDOW with PAE paging), its NPAGES pages are written and read
 * back like the others, then the firmware waits for the remove event that
 * device_del raises, ejects the DIMM, and exits with 33 only if the slot
 * is then empty.  It writes 'T' to the debug console (port 0xe9) once the
 * DIMM's pages were written and 'E' once the slot is empty, which the
 * driver shows when something went wrong.
 *
 * Built with `as --32` and `ld -m elf_i386 -Ttext=0 -e 0 --oformat binary`;
 * PLAIN_GPA, NC_GPA and NPAGES are given with --defsym, and for
 * fw-hotplug.bin also HOTPLUG, DIMM_GPA_LO and DIMM_GPA_HI.
 */
	.set	BASE, 0xffff0000	/* where the image's first byte is */
	.set	DEBUG_EXIT, 0xf4
	.set	EXIT_OK, 0x10
	.set	EXIT_MISMATCH, 0x20
	.set	PATTERN, 0x5a17c0de
	.set	DEBUGCON, 0xe9
	.set	MHP_IO, 0xa00		/* ACPI_MEMORY_HOTPLUG_BASE */
	.set	MHP_STATUS, MHP_IO + 0x14
	.set	MHP_ENABLED, 1
	.set	MHP_REMOVING, 4
	.set	MHP_EJECT, 8
	.set	PT, 0x10000		/* PAE tables: PDPT, then PDs for 0, 1 and 3 GiB */
	.set	WINDOW, 0x40000000	/* where the DIMM is mapped: PDPT[1], PD entry 0 */
	.set	PDE_2M, 0x83		/* present, writable, 2 MiB page */

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
.ifdef HOTPLUG
	call	dimm
	jne	bad
.endif
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

.ifdef HOTPLUG
/* The hot-plugged DIMM, from plug to eject; ZF set when all went as it should. */
dimm:
	xorl	%eax, %eax		/* select slot 0 */
	movw	$MHP_IO, %dx
	outl	%eax, %dx
	movw	$MHP_STATUS, %dx
	inb	%dx, %al
	testb	$MHP_ENABLED, %al
	jz	8f
	movw	$MHP_IO, %dx		/* its address, low then high half */
	inl	%dx, %eax
	cmpl	$DIMM_GPA_LO, %eax
	jne	8f
	addw	$4, %dx
	inl	%dx, %eax
	cmpl	$DIMM_GPA_HI, %eax
	jne	8f

	/* Identity maps for the stack and the tables (0) and this code (3 GiB). */
	movl	$PT, %edi
	movl	$(4 * 4096 / 4), %ecx
	xorl	%eax, %eax
	rep stosl
	movl	$(PT + 0x1001), PT
	movl	$(PT + 0x2001), PT + 8
	movl	$(PT + 0x3001), PT + 24
	movl	$PDE_2M, PT + 0x1000
	movl	$(DIMM_GPA_LO | PDE_2M), PT + 0x2000
	movl	$DIMM_GPA_HI, PT + 0x2004
	movl	$(0xffe00000 | PDE_2M), PT + 0x3000 + 511 * 8
	movl	$PT, %eax
	movl	%eax, %cr3
	movl	%cr4, %eax
	orl	$0x20, %eax		/* PAE */
	movl	%eax, %cr4
	movl	%cr0, %eax
	orl	$0x80000000, %eax	/* PG */
	movl	%eax, %cr0
	jmp	1f
1:	movl	$WINDOW, %edi
	call	fill
	movl	$WINDOW, %edi
	call	check
	jne	8f
	movb	$'T', %al
	outb	%al, $DEBUGCON

	/* device_del sets the remove event; an OS's _EJ0 then writes the eject bit. */
	movw	$MHP_STATUS, %dx
2:	inb	%dx, %al
	testb	$MHP_REMOVING, %al
	jz	2b
	movb	$MHP_EJECT, %al
	outb	%al, %dx
	inb	%dx, %al
	testb	$MHP_ENABLED, %al
	jnz	8f
	movb	$'E', %al
	outb	%al, $DEBUGCON
	xorl	%eax, %eax		/* sets ZF */
	ret
8:	orl	$1, %eax		/* clears ZF */
	ret
.endif

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
