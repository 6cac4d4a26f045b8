# exits.bin - VM-exit benchmark guest.
#
# Boot: flat image, mode "long", loaded and entered at 0x100000 (one vCPU).
#
# Performs pio_count 1-byte port writes to 0x510, then mmio_count 4-byte
# MMIO writes to 0xd0000000 (both windows of the "scratchpad" example
# plugin, where writes are counted and dropped, so every write is exactly
# one exit to user space), then exits with status 0 via the debug-exit port.
#
# Image header (little endian), patched by bench/exits/patch-counts:
#   offset 0   2-byte short jmp over the header
#   offset 2   6-byte magic "VEXITS"
#   offset 8   u64 pio_count
#   offset 16  u64 mmio_count
#   offset 24  code

    .intel_syntax noprefix
    .code64

    .equ SINK_PORT, 0x510
    .equ SINK_MMIO, 0xd0000000
    .equ DEBUG_EXIT, 0xf4

    .section .text.head, "ax"
    .globl _start
_start:
    .byte 0xeb, 24 - 2              # jmp short to offset 24, spelled out so the layout is fixed
    .ascii "VEXITS"
pio_count:  .quad 0
mmio_count: .quad 0

code:
    mov rcx, [rip + pio_count]
    test rcx, rcx
    jz 2f
    mov dx, SINK_PORT               # port > 0xff: needs dx
1:  out dx, al
    dec rcx
    jnz 1b

2:  mov rcx, [rip + mmio_count]
    test rcx, rcx
    jz 4f
    mov edi, SINK_MMIO              # 32-bit move zero-extends; a disp32 would sign-extend to 0xffffffffd0000000
3:  mov [rdi], eax
    dec rcx
    jnz 3b

4:  xor eax, eax
    out DEBUG_EXIT, al
5:  pause                           # backstop only; never hlt (see lib64.inc)
    jmp 5b

    .if (code - _start) != 24
    .error "exits.bin header layout changed: update bench/exits/patch-counts"
    .endif
