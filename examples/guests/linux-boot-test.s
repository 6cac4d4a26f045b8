# linux-boot-test.bzImage - a fake Linux bzImage that checks what a loader
# following Documentation/arch/x86/boot.rst hands the kernel.
#
# Boot: format "bzimage" (examples/linux-boot.toml). The file is a real-mode
# setup part (2 sectors, never run: the 64-bit boot protocol skips it) with a
# protocol 2.15 setup header, then the protected-mode kernel. The header
# says: LOADED_HIGH, relocatable with 2 MiB alignment, preferred address
# 16 MiB, XLF_KERNEL_64, so the loader should enter startup_64 (0x200 into
# the protected-mode part) in long mode with RSI = the zero page.
#
# The config passes cmdline "veneer-test answer=42" and the initrd
# build/test-initrd.txt. startup_64 checks the selectors (__BOOT_CS 0x10,
# __BOOT_DS 0x18), where it was loaded (kernel_alignment, code32_start), the
# copied header (boot_flag, HdrS, version), type_of_loader, the command line,
# the e820 table (1..128 entries, usable RAM at 0 and at 1 MiB) and the
# initrd (page aligned, below initrd_addr_max, clear of the kernel, size and
# contents against a copy built in). Each check prints a line to COM1; exit
# status 0 only when all pass, 1 otherwise (3 if the 32-bit entry was used).
#
# The protected-mode part is position independent (RIP-relative only): it is
# linked at 0 and runs wherever the loader puts it.

    .intel_syntax noprefix

    .equ SETUP_SECTS,     1
    .equ INIT_SIZE,       0x40000           # image + stack, what the loader must leave free
    .equ KERNEL_ALIGN,    0x200000
    .equ PREF_ADDRESS,    0x1000000
    .equ INITRD_ADDR_MAX, 0x7fffffff
    .equ CMDLINE_SIZE,    2047
    .equ BOOT_CS,         0x10
    .equ BOOT_DS,         0x18

    # struct boot_params offsets (Documentation/arch/x86/zero-page.rst)
    .equ ZP_EXT_RAMDISK_IMAGE, 0x0c0
    .equ ZP_EXT_RAMDISK_SIZE,  0x0c4
    .equ ZP_EXT_CMD_LINE_PTR,  0x0c8
    .equ ZP_E820_ENTRIES,      0x1e8
    .equ ZP_BOOT_FLAG,         0x1fe
    .equ ZP_HEADER,            0x202
    .equ ZP_VERSION,           0x206
    .equ ZP_TYPE_OF_LOADER,    0x210
    .equ ZP_CODE32_START,      0x214
    .equ ZP_RAMDISK_IMAGE,     0x218
    .equ ZP_RAMDISK_SIZE,      0x21c
    .equ ZP_CMD_LINE_PTR,      0x228
    .equ ZP_E820_TABLE,        0x2d0

    .macro print label
        lea rsi, [rip + \label]
        call uart_puts
    .endm

    # Falls through when the condition holds; registers are untouched either way
    # until the failure path takes rsi for the message.
    .macro fail_unless cond, what
        j\cond 9f
        lea rsi, [rip + \what]
        jmp fail
9:
    .endm

    .section .text.head, "ax"
    .globl _start
_start:
# ---- real-mode setup part: boot sector ------------------------------------
    .code16
    cli                             # never run by a 64-bit loader; a BIOS would land here
1:  hlt
    jmp 1b

    .org 0x1f1
setup_sects:        .byte SETUP_SECTS
root_flags:         .word 0
syssize:            .long SYSSIZE     # bzimage.ld computes it from the linked size
ram_size:           .word 0
vid_mode:           .word 0xffff
root_dev:           .word 0
boot_flag:          .word 0xaa55
# 0x200: the jump over the header; its displacement gives the header's end
jump:               .byte 0xeb, setup_header_end - header
header:             .ascii "HdrS"
version:            .word 0x020f
realmode_swtch:     .long 0
start_sys_seg:      .word 0x1000
kernel_version:     .word 0
type_of_loader:     .byte 0
loadflags:          .byte 0x01      # LOADED_HIGH
setup_move_size:    .word 0x8000
code32_start:       .long 0x100000
ramdisk_image:      .long 0
ramdisk_size:       .long 0
bootsect_kludge:    .long 0
heap_end_ptr:       .word 0
ext_loader_ver:     .byte 0
ext_loader_type:    .byte 0
cmd_line_ptr:       .long 0
initrd_addr_max:    .long INITRD_ADDR_MAX
kernel_alignment:   .long KERNEL_ALIGN
relocatable_kernel: .byte 1
min_alignment:      .byte 21
xloadflags:         .word 0x0001    # XLF_KERNEL_64
cmdline_size:       .long CMDLINE_SIZE
hardware_subarch:   .long 0
hardware_subarch_data: .quad 0
payload_offset:     .long 0
payload_length:     .long 0
setup_data:         .quad 0
pref_address:       .quad PREF_ADDRESS
init_size:          .long INIT_SIZE
handover_offset:    .long 0
kernel_info_offset: .long 0
setup_header_end:

# ---- protected-mode kernel -------------------------------------------------
    .org (SETUP_SECTS + 1) * 512
    .globl payload_start
payload_start:
startup_32:                         # the 32-bit protocol's entry: not what we asked for
    .code32
    mov al, 3
    out 0xf4, al
1:  jmp 1b

    .org payload_start + 0x200
    .code64
startup_64:
    cld
    mov r15, rsi                    # r15 = zero page for the whole run
    lea rsp, [rip + stack_top]

    mov ax, cs
    cmp ax, BOOT_CS
    fail_unless e, what_cs
    mov ax, ds
    cmp ax, BOOT_DS
    fail_unless e, what_ds
    mov ax, es
    cmp ax, BOOT_DS
    fail_unless e, what_ds
    mov ax, ss
    cmp ax, BOOT_DS
    fail_unless e, what_ds
    print msg_entry
    lea rax, [rip + startup_64]
    call uart_puthex
    print msg_entry_tail
    mov rax, r15
    call uart_puthex
    print msg_newline

    # Where we run: a kernel_alignment boundary, and what code32_start says.
    lea rax, [rip + payload_start]
    test eax, KERNEL_ALIGN - 1
    fail_unless z, what_alignment
    mov ecx, [r15 + ZP_CODE32_START]
    cmp rax, rcx
    fail_unless e, what_code32_start

    cmp word ptr [r15 + ZP_BOOT_FLAG], 0xaa55
    fail_unless e, what_boot_flag
    cmp dword ptr [r15 + ZP_HEADER], 0x53726448
    fail_unless e, what_header
    cmp word ptr [r15 + ZP_VERSION], 0x020f
    fail_unless e, what_header
    cmp byte ptr [r15 + ZP_TYPE_OF_LOADER], 0xff
    fail_unless e, what_loader
    print msg_zero_page

    cmp dword ptr [r15 + ZP_EXT_CMD_LINE_PTR], 0
    fail_unless e, what_cmdline
    mov esi, [r15 + ZP_CMD_LINE_PTR]
    lea rdi, [rip + expected_cmdline]
    mov ecx, CMDLINE_SIZE + 1
    call strneq
    fail_unless e, what_cmdline
    print msg_cmdline
    mov esi, [r15 + ZP_CMD_LINE_PTR]
    call uart_puts
    print msg_quote_newline

    # e820: struct boot_e820_entry is packed { u64 addr, u64 size, u32 type }.
    movzx ecx, byte ptr [r15 + ZP_E820_ENTRIES]
    test ecx, ecx
    fail_unless nz, what_e820_count
    cmp ecx, 128
    fail_unless be, what_e820_count
    lea rsi, [r15 + ZP_E820_TABLE]
    cmp qword ptr [rsi], 0
    fail_unless e, what_e820_first
    cmp dword ptr [rsi + 16], 1
    fail_unless e, what_e820_first
    xor edi, edi                    # rdi = 1 once a usable range holds 1 MiB
2:  cmp dword ptr [rsi + 16], 1
    jne 3f
    mov rax, [rsi]
    cmp rax, 0x100000
    ja 3f
    add rax, [rsi + 8]
    cmp rax, 0x100000
    jbe 3f
    mov edi, 1
3:  add rsi, 20
    dec ecx
    jnz 2b
    test edi, edi
    fail_unless nz, what_e820_1mib
    print msg_e820
    movzx eax, byte ptr [r15 + ZP_E820_ENTRIES]
    call uart_putdec
    print msg_e820_tail

    # The initrd: page aligned, inside initrd_addr_max, clear of our
    # init_size footprint, and byte for byte the file the config names.
    cmp dword ptr [r15 + ZP_EXT_RAMDISK_IMAGE], 0
    fail_unless e, what_initrd_addr
    cmp dword ptr [r15 + ZP_EXT_RAMDISK_SIZE], 0
    fail_unless e, what_initrd_size
    mov ebx, [r15 + ZP_RAMDISK_IMAGE]      # rbx = initrd address
    test ebx, ebx
    fail_unless nz, what_initrd_addr
    test ebx, 0xfff
    fail_unless z, what_initrd_addr
    mov ecx, [r15 + ZP_RAMDISK_SIZE]
    cmp ecx, [rip + initrd_length]
    fail_unless e, what_initrd_size
    lea rax, [rbx + rcx]
    mov edx, INITRD_ADDR_MAX
    inc rdx
    cmp rax, rdx
    fail_unless be, what_initrd_max
    lea rdx, [rip + payload_start]
    cmp rax, rdx                    # ends at or below our start ...
    jbe 4f
    add rdx, INIT_SIZE
    cmp rbx, rdx                    # ... or starts past our footprint
    fail_unless ae, what_initrd_overlap
4:  mov rsi, rbx
    lea rdi, [rip + initrd_copy]
    call memeq
    fail_unless e, what_initrd_data
    print msg_initrd
    mov eax, [r15 + ZP_RAMDISK_SIZE]
    call uart_putdec
    print msg_initrd_at
    mov rax, rbx
    call uart_puthex
    print msg_initrd_match

    print msg_pass
    xor eax, eax
    jmp debug_exit

# rsi = what failed
fail:
    push rsi
    print msg_failed
    pop rsi
    call uart_puts
    print msg_newline
    mov al, 1
    jmp debug_exit

    .include "lib64.inc"

    .section .rodata
expected_cmdline:   .asciz "veneer-test answer=42"
    .balign 4
initrd_length:      .long initrd_copy_end - initrd_copy
initrd_copy:        .incbin "build/test-initrd.txt"
initrd_copy_end:

msg_entry:          .asciz "linux-boot-test: startup_64 at "
msg_entry_tail:     .asciz " in long mode, CS 0x10, DS/ES/SS 0x18, zero page at "
msg_newline:        .asciz "\n"
msg_zero_page:      .asciz "linux-boot-test: zero page has boot_flag 0xaa55, HdrS 2.15, type_of_loader 0xff\n"
msg_cmdline:        .asciz "linux-boot-test: cmdline '"
msg_quote_newline:  .asciz "'\n"
msg_e820:           .asciz "linux-boot-test: e820 "
msg_e820_tail:      .asciz " entries, usable RAM at 0 and at 1 MiB\n"
msg_initrd:         .asciz "linux-boot-test: initrd "
msg_initrd_at:      .asciz " bytes at "
msg_initrd_match:   .asciz ", contents match\n"
msg_pass:           .asciz "linux-boot-test: all checks passed\n"
msg_failed:         .asciz "linux-boot-test: FAILED "
what_cs:            .asciz "CS is not __BOOT_CS 0x10"
what_ds:            .asciz "DS/ES/SS are not __BOOT_DS 0x18"
what_alignment:     .asciz "loaded at an address not aligned to kernel_alignment"
what_code32_start:  .asciz "code32_start is not where the kernel was loaded"
what_boot_flag:     .asciz "zero page boot_flag is not 0xaa55"
what_header:        .asciz "zero page setup header is not ours (HdrS 2.15)"
what_loader:        .asciz "type_of_loader is not 0xff"
what_cmdline:       .asciz "cmdline is not 'veneer-test answer=42'"
what_e820_count:    .asciz "e820_entries not in 1..128"
what_e820_first:    .asciz "first e820 entry is not usable RAM at 0"
what_e820_1mib:     .asciz "no usable e820 range holds 1 MiB"
what_initrd_addr:   .asciz "ramdisk_image missing, above 4 GiB or not page aligned"
what_initrd_size:   .asciz "ramdisk_size differs from build/test-initrd.txt"
what_initrd_max:    .asciz "initrd ends above initrd_addr_max"
what_initrd_overlap: .asciz "initrd overlaps the kernel's init_size footprint"
what_initrd_data:   .asciz "initrd contents differ from build/test-initrd.txt"

    .section .bss
    .balign 16
    .skip 4096
stack_top:
