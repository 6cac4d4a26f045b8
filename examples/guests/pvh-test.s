# pvh-test.elf - checks what a PVH loader hands a kernel.
#
# Boot: format "pvh" (examples/pvh.toml): ELF64 whose Xen note
# XEN_ELFNOTE_PHYS32_ENTRY (type 18) names pvh_start; entered there in 32-bit
# protected mode, paging off, EBX = hvm_start_info.
#
# The config passes cmdline "veneer-test answer=42" and the initrd
# build/test-initrd.txt. This kernel checks the start_info magic and version,
# the command line, the memory map (first entry usable RAM at 0, a usable
# range holding 1 MiB) and the initrd module's size and contents (against a
# copy built in), and that its own bss arrived zeroed. Each check prints a
# line to COM1; exit status 0 only when all pass, 1 otherwise.

    .intel_syntax noprefix

    .equ START_INFO_MAGIC, 0x336ec578
    .equ MAX_STRING, 256
    .equ MAX_MEMMAP, 128

    .macro print label
        mov esi, offset \label
        call uart_puts
    .endm

    # Falls through when the condition holds; registers are untouched either way
    # until the failure path takes esi for the message.
    .macro fail_unless cond, what
        j\cond 9f
        mov esi, offset \what
        jmp fail
9:
    .endm

    # The PVH entry note, as Linux writes it: name "Xen", a pointer-sized
    # descriptor holding the 32-bit entry's physical address.
    .section .note.Xen, "a"
    .balign 4
    .long 4                         # namesz
    .long 8                         # descsz
    .long 18                        # XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .quad pvh_start
    .balign 4

    .code32
    .section .text
    .globl pvh_start
pvh_start:
    cld
    mov esp, offset stack_top
    # ebx = hvm_start_info for the whole run (the helpers leave ebx alone)

    cmp dword ptr [ebx], START_INFO_MAGIC
    fail_unless e, what_magic
    cmp dword ptr [ebx + 4], 1      # version 1: the memmap fields exist
    fail_unless ae, what_version
    print msg_magic
    mov eax, ebx
    call uart_puthex
    print msg_version
    mov eax, [ebx + 4]
    call uart_putdec
    print msg_newline

    # Our bss must be zero: the loader zero-fills past the file bytes.
    mov esi, offset bss_start
    mov ecx, offset bss_end
    sub ecx, esi
    shr ecx, 2
1:  cmp dword ptr [esi], 0
    fail_unless e, what_bss
    add esi, 4
    dec ecx
    jnz 1b

    cmp dword ptr [ebx + 28], 0     # cmdline_paddr below 4 GiB
    fail_unless e, what_cmdline
    mov esi, [ebx + 24]
    mov edi, offset expected_cmdline
    mov ecx, MAX_STRING
    call strneq
    fail_unless e, what_cmdline
    print msg_cmdline
    mov esi, [ebx + 24]
    call uart_puts
    print msg_quote_newline

    # Memory map: hvm_memmap_table_entry is { u64 addr, u64 size, u32 type, u32 reserved }.
    mov ecx, [ebx + 48]             # memmap_entries
    test ecx, ecx
    fail_unless nz, what_memmap_count
    cmp ecx, MAX_MEMMAP
    fail_unless be, what_memmap_count
    cmp dword ptr [ebx + 44], 0     # memmap_paddr below 4 GiB
    fail_unless e, what_memmap_first
    mov esi, [ebx + 40]
    cmp dword ptr [esi], 0          # first entry: addr 0, usable
    fail_unless e, what_memmap_first
    cmp dword ptr [esi + 4], 0
    fail_unless e, what_memmap_first
    cmp dword ptr [esi + 16], 1
    fail_unless e, what_memmap_first
    xor edi, edi                    # edi = 1 once a usable range holds 1 MiB
2:  cmp dword ptr [esi + 16], 1
    jne 3f
    cmp dword ptr [esi + 4], 0
    jne 3f
    cmp dword ptr [esi], 0x100000
    ja 3f
    mov eax, [esi]
    mov edx, [esi + 12]
    add eax, [esi + 8]
    adc edx, 0
    jnz 4f                          # reaches past 4 GiB: certainly holds 1 MiB
    cmp eax, 0x100000
    jbe 3f
4:  mov edi, 1
3:  add esi, 24
    dec ecx
    jnz 2b
    test edi, edi
    fail_unless nz, what_memmap_1mib
    print msg_memmap
    mov eax, [ebx + 48]
    call uart_putdec
    print msg_memmap_tail

    # The initrd: one module, page aligned, its bytes intact.
    cmp dword ptr [ebx + 12], 1     # nr_modules
    fail_unless e, what_modules
    cmp dword ptr [ebx + 20], 0
    fail_unless e, what_modules
    mov ebp, [ebx + 16]             # ebp = modlist entry { u64 paddr, u64 size, u64 cmdline, u64 reserved }
    cmp dword ptr [ebp + 4], 0
    fail_unless e, what_initrd_addr
    test dword ptr [ebp], 0xfff
    fail_unless z, what_initrd_addr
    cmp dword ptr [ebp + 12], 0
    fail_unless e, what_initrd_size
    mov ecx, [ebp + 8]
    cmp ecx, [initrd_length]
    fail_unless e, what_initrd_size
    mov esi, [ebp]
    mov edi, offset initrd_copy
    call memeq
    fail_unless e, what_initrd_data
    print msg_initrd
    mov eax, [ebp + 8]
    call uart_putdec
    print msg_initrd_at
    mov eax, [ebp]
    call uart_puthex
    print msg_initrd_match

    print msg_pass
    xor eax, eax
    jmp debug_exit

# esi = what failed
fail:
    push esi
    print msg_failed
    pop esi
    call uart_puts
    print msg_newline
    mov al, 1
    jmp debug_exit

    .include "lib32.inc"

    .section .rodata
expected_cmdline:   .asciz "veneer-test answer=42"
    .balign 4
initrd_length:      .long initrd_copy_end - initrd_copy
initrd_copy:        .incbin "build/test-initrd.txt"
initrd_copy_end:

msg_magic:          .asciz "pvh-test: start_info magic 0x336ec578 at "
msg_version:        .asciz ", version "
msg_newline:        .asciz "\n"
msg_cmdline:        .asciz "pvh-test: cmdline '"
msg_quote_newline:  .asciz "'\n"
msg_memmap:         .asciz "pvh-test: memmap "
msg_memmap_tail:    .asciz " entries, usable RAM at 0 and at 1 MiB\n"
msg_initrd:         .asciz "pvh-test: initrd module "
msg_initrd_at:      .asciz " bytes at "
msg_initrd_match:   .asciz ", contents match\n"
msg_pass:           .asciz "pvh-test: all checks passed\n"
msg_failed:         .asciz "pvh-test: FAILED "
what_magic:         .asciz "start_info magic is not 0x336ec578"
what_version:       .asciz "start_info version is below 1"
what_bss:           .asciz "bss not zeroed by the loader"
what_cmdline:       .asciz "cmdline is not 'veneer-test answer=42'"
what_memmap_count:  .asciz "memmap_entries not in 1..128"
what_memmap_first:  .asciz "first memmap entry is not usable RAM at 0"
what_memmap_1mib:   .asciz "no usable memmap range holds 1 MiB"
what_modules:       .asciz "nr_modules is not 1"
what_initrd_addr:   .asciz "initrd not page aligned below 4 GiB"
what_initrd_size:   .asciz "initrd size differs from build/test-initrd.txt"
what_initrd_data:   .asciz "initrd contents differ from build/test-initrd.txt"

    .section .bss
    .balign 16
bss_start:                          # checked for zeros (the stack below is not: it is in use)
    .skip 1024
bss_end:
    .skip 4096
stack_top:
