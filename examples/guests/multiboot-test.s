# multiboot-test.elf - checks what a Multiboot (v1) loader hands a kernel.
#
# Boot: format "multiboot" (examples/multiboot.toml): ELF32 with a multiboot
# header asking for page-aligned modules and memory information; entered in
# 32-bit protected mode, paging off, EAX = 0x2BADB002, EBX = multiboot info.
#
# The config passes cmdline "veneer-test answer=42" and one module, the file
# multiboot-module.txt with the string "mod-arg=7". This kernel checks the
# magic, the info flags, the command line, the boot loader name, mem_lower,
# mem_upper against the mmap's usable range at 1 MiB, and the module's
# alignment, size, contents (against a copy built in) and string. Each check
# prints a line to COM1; exit status 0 only when all pass, 1 otherwise
# ("multiboot-test: FAILED <what>" first).

    .intel_syntax noprefix
    .code32

    .equ MB_HEADER_MAGIC, 0x1badb002
    .equ MB_HEADER_FLAGS, 0x00000003        # page-align modules, memory information
    .equ MB_LOADER_MAGIC, 0x2badb002
    # memory, cmdline, mods, mmap, boot loader name
    .equ INFO_FLAGS, (1 << 0) | (1 << 2) | (1 << 3) | (1 << 6) | (1 << 9)
    .equ MAX_STRING, 256

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

    .section .multiboot, "a"
    .balign 4
    .long MB_HEADER_MAGIC
    .long MB_HEADER_FLAGS
    .long -(MB_HEADER_MAGIC + MB_HEADER_FLAGS)

    .section .text
    .globl _start
_start:
    cld
    mov esp, offset stack_top
    mov ebp, eax                    # the magic, checked once we can report
    # ebx = multiboot info for the whole run (the helpers leave ebx alone)

    cmp ebp, MB_LOADER_MAGIC
    fail_unless e, what_magic
    print msg_magic
    mov eax, ebx
    call uart_puthex
    print msg_newline

    mov eax, [ebx]
    and eax, INFO_FLAGS
    cmp eax, INFO_FLAGS
    fail_unless e, what_flags

    mov esi, [ebx + 16]
    mov edi, offset expected_cmdline
    mov ecx, MAX_STRING
    call strneq
    fail_unless e, what_cmdline
    print msg_cmdline
    mov esi, [ebx + 16]
    call uart_puts
    print msg_quote_newline

    mov esi, [ebx + 64]
    mov edi, offset expected_loader
    mov ecx, MAX_STRING
    call strneq
    fail_unless e, what_loader
    print msg_loader
    mov esi, [ebx + 64]
    call uart_puts
    print msg_quote_newline

    # Memory: mem_lower in 1..640 KiB, mem_upper at least 1 MiB, the mmap's
    # first entry usable RAM at 0, and the usable range holding 1 MiB ending
    # exactly at 1 MiB + mem_upper.
    mov eax, [ebx + 4]
    test eax, eax
    fail_unless nz, what_mem_lower
    cmp eax, 640
    fail_unless be, what_mem_lower
    cmp dword ptr [ebx + 8], 1024
    fail_unless ae, what_mem_upper

    mov esi, [ebx + 48]
    cmp dword ptr [esi + 4], 0      # first entry: base 0 ...
    fail_unless e, what_mmap_first
    cmp dword ptr [esi + 8], 0
    fail_unless e, what_mmap_first
    cmp dword ptr [esi + 20], 1     # ... usable
    fail_unless e, what_mmap_first

    mov edx, esi
    add edx, [ebx + 44]             # edx = end of the mmap
    xor edi, edi                    # edi = end of the usable range holding 1 MiB
    mov ebp, 256                    # a corrupt size field must not make us loop forever
1:  cmp esi, edx
    jae 3f
    dec ebp
    jz 3f
    cmp dword ptr [esi], 20
    fail_unless ae, what_mmap_size
    cmp dword ptr [esi + 20], 1     # usable
    jne 2f
    cmp dword ptr [esi + 8], 0      # base below 4 GiB
    jne 2f
    mov eax, [esi + 4]
    cmp eax, 0x100000
    ja 2f
    mov ecx, [esi + 16]
    add eax, [esi + 12]
    adc ecx, 0
    jnz 2f                          # ends above 4 GiB: not the layout this test expects
    cmp eax, 0x100000
    jbe 2f
    mov edi, eax
2:  mov eax, [esi]
    lea esi, [esi + eax + 4]
    jmp 1b
3:  test edi, edi
    fail_unless nz, what_mmap_1mib
    mov eax, [ebx + 8]
    shl eax, 10
    add eax, 0x100000
    cmp eax, edi
    fail_unless e, what_mem_upper_mmap
    print msg_mem_lower
    mov eax, [ebx + 4]
    call uart_putdec
    print msg_mem_upper
    mov eax, [ebx + 8]
    call uart_putdec
    print msg_mem_end
    mov eax, edi
    call uart_puthex
    print msg_newline

    # The module: one, page aligned (we asked), its bytes and string intact.
    cmp dword ptr [ebx + 20], 1
    fail_unless e, what_mods_count
    mov ebp, [ebx + 24]             # ebp = the module's entry
    mov eax, [ebp]
    test eax, 0xfff
    fail_unless z, what_mod_align
    mov ecx, [ebp + 4]
    sub ecx, eax
    cmp ecx, [module_length]
    fail_unless e, what_mod_size
    mov esi, eax
    mov edi, offset module_copy
    call memeq
    fail_unless e, what_mod_data
    mov esi, [ebp + 8]
    mov edi, offset expected_mod_string
    mov ecx, MAX_STRING
    call strneq
    fail_unless e, what_mod_string
    print msg_module
    mov esi, [ebp + 8]
    call uart_puts
    print msg_module_bytes
    mov eax, [module_length]
    call uart_putdec
    print msg_module_at
    mov eax, [ebp]
    call uart_puthex
    print msg_module_match

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
expected_cmdline:    .asciz "veneer-test answer=42"
expected_loader:     .asciz "veneer"
expected_mod_string: .asciz "mod-arg=7"
    .balign 4
module_length:       .long module_copy_end - module_copy
module_copy:         .incbin "multiboot-module.txt"
module_copy_end:

msg_magic:          .asciz "multiboot-test: EAX magic 0x2badb002, info at "
msg_cmdline:        .asciz "multiboot-test: cmdline '"
msg_loader:         .asciz "multiboot-test: boot loader '"
msg_quote_newline:  .asciz "'\n"
msg_newline:        .asciz "\n"
msg_mem_lower:      .asciz "multiboot-test: mem_lower "
msg_mem_upper:      .asciz " KiB, mem_upper "
msg_mem_end:        .asciz " KiB, mmap usable RAM from 1 MiB ends at "
msg_module:         .asciz "multiboot-test: module '"
msg_module_bytes:   .asciz "', "
msg_module_at:      .asciz " bytes at "
msg_module_match:   .asciz ", contents match\n"
msg_pass:           .asciz "multiboot-test: all checks passed\n"
msg_failed:         .asciz "multiboot-test: FAILED "
what_magic:         .asciz "EAX is not 0x2badb002"
what_flags:         .asciz "info flags lack memory/cmdline/mods/mmap/loader name"
what_cmdline:       .asciz "cmdline is not 'veneer-test answer=42'"
what_loader:        .asciz "boot loader name is not 'veneer'"
what_mem_lower:     .asciz "mem_lower not in 1..640 KiB"
what_mem_upper:     .asciz "mem_upper below 1024 KiB"
what_mmap_first:    .asciz "first mmap entry is not usable RAM at 0"
what_mmap_size:     .asciz "mmap entry size field below 20"
what_mmap_1mib:     .asciz "no usable mmap range holds 1 MiB"
what_mem_upper_mmap: .asciz "mem_upper disagrees with the mmap range at 1 MiB"
what_mods_count:    .asciz "mods_count is not 1"
what_mod_align:     .asciz "module not page aligned"
what_mod_size:      .asciz "module size differs from multiboot-module.txt"
what_mod_data:      .asciz "module contents differ from multiboot-module.txt"
what_mod_string:    .asciz "module string is not 'mod-arg=7'"

    .section .bss
    .balign 16
    .skip 4096
stack_top:
