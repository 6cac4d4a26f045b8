# scratchpad-check.bin - proves a third-party C plugin is reachable from a guest.
#
# Boot: flat image, mode "long", at 0x100000. Talks to the example "scratchpad"
# plugin (examples/plugins/scratchpad) through both of its windows: PIO at 0x510
# and MMIO at 0xd0000000 share one register file (ID at 0, SCRATCH at 4,
# WRITE_COUNT at 8). Exits 0 only if the ID reads right over both windows, a
# value written through MMIO reads back through PIO, and the write counter saw
# exactly the two writes made here.

    .intel_syntax noprefix
    .code64

    .equ PAD_PORT, 0x510
    .equ PAD_MMIO, 0xd0000000
    .equ PAD_ID,   0x53524356

    .section .text.head, "ax"
    .globl _start
_start:
    lea rsp, [rip + stack_top]

    mov dx, PAD_PORT
    in eax, dx                      # ID over PIO
    cmp eax, PAD_ID
    jne fail_id

    mov edi, PAD_MMIO               # zero-extended: see exits.s
    mov eax, [rdi]                  # ID over MMIO
    cmp eax, PAD_ID
    jne fail_id

    mov dword ptr [rdi + 4], 0x5eed1234     # SCRATCH via MMIO (write 1)
    mov dx, PAD_PORT + 4
    in eax, dx                              # ... read back via PIO
    cmp eax, 0x5eed1234
    jne fail_scratch

    mov eax, 0x0badcafe
    out dx, eax                             # SCRATCH via PIO (write 2)
    mov eax, [rdi + 4]
    cmp eax, 0x0badcafe
    jne fail_scratch

    mov eax, [rdi + 8]                      # WRITE_COUNT
    cmp eax, 2
    jne fail_count

    lea rsi, [rip + msg_ok]
    call uart_puts
    xor eax, eax
    jmp debug_exit

fail_id:
    lea rsi, [rip + msg_id]
    jmp fail
fail_scratch:
    lea rsi, [rip + msg_scratch]
    jmp fail
fail_count:
    lea rsi, [rip + msg_count]
fail:
    call uart_puts
    mov al, 1
    jmp debug_exit

    .include "lib64.inc"

    .section .rodata
msg_ok:      .asciz "scratchpad: ID, scratch and write count correct over PIO and MMIO\n"
msg_id:      .asciz "scratchpad: FAILED wrong ID\n"
msg_scratch: .asciz "scratchpad: FAILED scratch register did not read back\n"
msg_count:   .asciz "scratchpad: FAILED wrong write count\n"

    .section .bss
    .balign 16
    .skip 4096
stack_top:
