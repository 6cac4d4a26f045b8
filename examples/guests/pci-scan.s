# pci-scan.bin - PCI through configuration mechanism #1 (the "pci-host" plugin).
#
# Boot: flat image, mode "long", at 0x100000; one or two vCPUs (examples/pci.toml).
#
# vCPU 0 scans bus 0 through CONFIG_ADDRESS (0xcf8) and CONFIG_DATA (0xcfc),
# printing every function it finds, checks the core's host bridge at 00:00.0,
# finds the first "pci-testdev" function (vendor 0xfffe, device 0x7e57) and:
#   - reads its ids through word and byte lanes of CONFIG_DATA, its interrupt
#     pin and line, and its capability list;
#   - sizes BAR0 (32-bit memory), BAR1 (I/O) and BAR2 (64-bit memory);
#   - places BAR0 and BAR1, enables decoding, reads the ID register through
#     them, moves both while decoding stays on and checks that the new
#     addresses answer and the old ones read all ones;
#   - with a second vCPU: moves BAR0 back and forth 2000 times while vCPU 1
#     keeps reading both addresses, each of which must read either the ID or
#     all ones (an unclaimed address), never anything else;
#   - disables memory decoding and checks that BAR0 stops answering.
# Exits 0 through debug-exit only if every check passed, else prints the
# failed check and exits 1.

    .intel_syntax noprefix
    .code64

    .equ CONFIG_ADDRESS, 0xcf8
    .equ CONFIG_DATA,    0xcfc
    .equ ENABLE,         0x80000000
    .equ TESTDEV_IDS,    0x7e57fffe     # device << 16 | vendor
    .equ TESTDEV_ID_REG, 0x49435056     # "VPCI"
    .equ BRIDGE_IDS,     0x71928086     # Intel 440BX
    .equ BAR0_A,         0xe0000000
    .equ BAR0_B,         0xe0100000
    .equ BAR1_A,         0xc000
    .equ BAR1_B,         0xc100
    .equ BAR2_A,         0xe0200000
    .equ MOVES,          2000

    .section .text.head, "ax"
    .globl _start
_start:
    test edi, edi
    jnz reader                      # vCPUs other than 0 read BAR0 during the stress phase
    lea rsp, [rip + stack_top]
    mov [rip + vcpu_count], esi

# --- host bridge -------------------------------------------------------------
    mov eax, ENABLE                 # 00:00.0 register 0
    call config_read
    lea rsi, [rip + msg_bridge]
    cmp eax, BRIDGE_IDS
    jne fail
    mov eax, ENABLE | 0x08          # class code and revision
    call config_read
    shr eax, 8
    cmp eax, 0x060000
    jne fail

# --- scan bus 0 --------------------------------------------------------------
    xor r12d, r12d                  # device number of the first test device (0: none)
    xor r13d, r13d                  # device number being probed
scan:
    mov eax, r13d
    shl eax, 11
    or eax, ENABLE
    call config_read
    cmp eax, 0xffffffff
    je next
    mov r14d, eax                   # ids
    lea rsi, [rip + msg_found]
    call uart_puts
    mov eax, r13d
    mov ecx, 2
    call puthex
    lea rsi, [rip + msg_dot0]
    call uart_puts
    mov eax, r14d
    mov ecx, 4
    call puthex                     # vendor
    lea rsi, [rip + msg_colon]
    call uart_puts
    mov eax, r14d
    shr eax, 16
    mov ecx, 4
    call puthex                     # device
    lea rsi, [rip + msg_class]
    call uart_puts
    mov eax, r13d
    shl eax, 11
    or eax, ENABLE | 0x08
    call config_read
    shr eax, 8
    mov ecx, 6
    call puthex
    lea rsi, [rip + msg_newline]
    call uart_puts
    cmp r14d, TESTDEV_IDS
    jne next
    test r12d, r12d
    jnz next
    mov r12d, r13d
next:
    inc r13d
    cmp r13d, 32
    jb scan

    lea rsi, [rip + msg_absent]     # an absent function and other buses read all ones
    mov eax, ENABLE | (31 << 11)
    cmp r12d, 31
    jne 1f
    mov eax, ENABLE | (30 << 11)
1:  call config_read
    cmp eax, 0xffffffff
    jne fail
    mov eax, ENABLE | (1 << 16)
    call config_read
    cmp eax, 0xffffffff
    jne fail

    lea rsi, [rip + msg_notfound]
    test r12d, r12d
    jz fail
    shl r12d, 11
    or r12d, ENABLE                 # r12d: CONFIG_ADDRESS of the test device, register 0

# --- lanes, interrupt pin and line, capabilities -----------------------------
    mov eax, r12d
    mov dx, CONFIG_ADDRESS
    out dx, eax
    mov dx, CONFIG_DATA + 2
    in ax, dx                       # device id through the upper word lane
    lea rsi, [rip + msg_lanes]
    cmp ax, 0x7e57
    jne fail
    mov dx, CONFIG_DATA + 1
    in al, dx                       # vendor id, high byte
    cmp al, 0xff
    jne fail

    lea eax, [r12d + 0x3c]
    mov dx, CONFIG_ADDRESS
    out dx, eax
    mov dx, CONFIG_DATA + 1
    in al, dx
    lea rsi, [rip + msg_pin]
    cmp al, 1                       # INTA#
    jne fail
    mov dx, CONFIG_DATA
    in al, dx
    cmp al, 11                      # the line the device was configured with
    jne fail

    lea eax, [r12d + 0x04]
    call config_read
    lea rsi, [rip + msg_caps]
    test eax, 0x100000              # status: capabilities list
    jz fail
    lea eax, [r12d + 0x34]
    call config_read
    cmp al, 0x40
    jne fail
    lea eax, [r12d + 0x40]
    call config_read
    cmp eax, 0x56080009             # vendor-specific (9), last in the list, 8 bytes, 'V'
    jne fail

# --- BAR sizing (decoding off) -----------------------------------------------
    lea eax, [r12d + 0x04]
    xor ebx, ebx
    call config_write               # command: everything off
    lea rsi, [rip + msg_sizing]
    lea eax, [r12d + 0x10]
    mov ebx, 0xffffffff
    call config_write
    call config_read
    cmp eax, 0xfffff000             # 4 KiB, 32-bit, not prefetchable
    jne fail
    lea eax, [r12d + 0x14]
    call config_write
    call config_read
    cmp eax, 0xffffffe1             # 32 ports, I/O
    jne fail
    lea eax, [r12d + 0x18]
    call config_write
    call config_read
    cmp eax, 0xfffff00c             # 4 KiB, 64-bit, prefetchable
    jne fail
    lea eax, [r12d + 0x1c]
    call config_write
    call config_read
    cmp eax, 0xffffffff             # upper half: every address bit writable
    jne fail
    lea eax, [r12d + 0x20]
    call config_write
    call config_read
    test eax, eax                   # BAR4: unused
    jnz fail

# --- place, enable, move -----------------------------------------------------
    lea eax, [r12d + 0x10]
    mov ebx, BAR0_A
    call config_write
    lea eax, [r12d + 0x14]
    mov ebx, BAR1_A
    call config_write
    lea eax, [r12d + 0x18]
    mov ebx, BAR2_A
    call config_write
    lea eax, [r12d + 0x1c]
    xor ebx, ebx
    call config_write
    lea eax, [r12d + 0x04]
    mov ebx, 0x3                    # I/O and memory decoding
    call config_write

    lea rsi, [rip + msg_placed]
    mov edi, BAR0_A
    mov eax, [rdi]
    cmp eax, TESTDEV_ID_REG
    jne fail
    mov eax, [rdi + 0x10]           # which BAR answered
    cmp eax, 0
    jne fail
    mov dx, BAR1_A
    in eax, dx
    cmp eax, TESTDEV_ID_REG
    jne fail
    mov dx, BAR1_A + 0x10
    in eax, dx
    cmp eax, 1
    jne fail
    mov edi, BAR2_A
    mov eax, [rdi + 0x10]
    cmp eax, 2
    jne fail

    lea eax, [r12d + 0x10]          # move while decoding stays on
    mov ebx, BAR0_B
    call config_write
    lea eax, [r12d + 0x14]
    mov ebx, BAR1_B
    call config_write
    lea rsi, [rip + msg_moved]
    mov edi, BAR0_B
    mov eax, [rdi]
    cmp eax, TESTDEV_ID_REG
    jne fail
    mov edi, BAR0_A
    mov eax, [rdi]
    cmp eax, 0xffffffff
    jne fail
    mov dx, BAR1_B
    in eax, dx
    cmp eax, TESTDEV_ID_REG
    jne fail
    mov dx, BAR1_A
    in eax, dx
    cmp eax, 0xffffffff
    jne fail
    lea rsi, [rip + msg_moved_ok]
    call uart_puts

# --- moves while another vCPU reads ------------------------------------------
    cmp dword ptr [rip + vcpu_count], 2
    jb disable
    mov dword ptr [rip + stress_go], 1
    mov ecx, MOVES
1:  lea eax, [r12d + 0x10]
    mov ebx, BAR0_A
    test ecx, 1
    jz 2f
    mov ebx, BAR0_B
2:  call config_write
    dec ecx
    jnz 1b
    mov dword ptr [rip + stress_done], 1
    mov ecx, 0x4000000              # bounded wait for the reader to finish
3:  cmp dword ptr [rip + reader_done], 0
    jne 4f
    pause
    dec ecx
    jnz 3b
    lea rsi, [rip + msg_reader_hung]
    jmp fail
4:  lea rsi, [rip + msg_stress]
    cmp dword ptr [rip + stress_bad], 0
    jne fail
    cmp dword ptr [rip + stress_reads], 0
    je fail
    lea rsi, [rip + msg_stress_ok]
    call uart_puts

# --- decoding off ------------------------------------------------------------
disable:
    lea eax, [r12d + 0x10]
    mov ebx, BAR0_B
    call config_write
    lea eax, [r12d + 0x04]
    mov ebx, 0x1                    # I/O only
    call config_write
    lea rsi, [rip + msg_disabled]
    mov edi, BAR0_B
    mov eax, [rdi]
    cmp eax, 0xffffffff
    jne fail
    mov dx, BAR1_B
    in eax, dx
    cmp eax, TESTDEV_ID_REG
    jne fail

    lea rsi, [rip + msg_ok]
    call uart_puts
    xor eax, eax
    jmp debug_exit

fail:
    push rsi
    lea rsi, [rip + msg_failed]
    call uart_puts
    pop rsi
    call uart_puts
    mov al, 1
    jmp debug_exit

# eax: CONFIG_ADDRESS -> eax: the dword there. Clobbers edx.
config_read:
    mov dx, CONFIG_ADDRESS
    out dx, eax
    mov dx, CONFIG_DATA
    in eax, dx
    ret

# eax: CONFIG_ADDRESS, ebx: value. Keeps eax; clobbers edx.
config_write:
    mov dx, CONFIG_ADDRESS
    out dx, eax
    xchg eax, ebx
    mov dx, CONFIG_DATA
    out dx, eax
    xchg eax, ebx
    ret

# Print the low ecx hex digits of eax. Clobbers rax, rcx, rdx, rsi, r8, r9.
puthex:
    sub rsp, 16
    lea rsi, [rsp + 15]
    mov byte ptr [rsi], 0
    lea r9, [rip + hexdigits]
1:  mov r8d, eax
    and r8d, 0xf
    movzx edx, byte ptr [r9 + r8]
    dec rsi
    mov [rsi], dl
    shr eax, 4
    dec ecx
    jnz 1b
    call uart_puts
    add rsp, 16
    ret

# vCPU 1: reads both BAR0 addresses while vCPU 0 moves BAR0 between them. Each read
# must be the ID (BAR0 is there) or all ones (nothing is). Uses no stack.
reader:
1:  cmp dword ptr [rip + stress_go], 0
    jne 2f
    cmp dword ptr [rip + stress_done], 0
    jne 5f
    pause
    jmp 1b
2:  mov edi, BAR0_A
    mov eax, [rdi]
    cmp eax, TESTDEV_ID_REG
    je 3f
    cmp eax, 0xffffffff
    je 3f
    lock inc dword ptr [rip + stress_bad]
3:  mov edi, BAR0_B
    mov eax, [rdi]
    cmp eax, TESTDEV_ID_REG
    je 4f
    cmp eax, 0xffffffff
    je 4f
    lock inc dword ptr [rip + stress_bad]
4:  lock inc dword ptr [rip + stress_reads]
    cmp dword ptr [rip + stress_done], 0
    je 2b
5:  mov dword ptr [rip + reader_done], 1
6:  pause
    jmp 6b

    .include "lib64.inc"

    .section .rodata
hexdigits:       .ascii "0123456789abcdef"
msg_found:       .asciz "pci: 00:"
msg_dot0:        .asciz ".0 "
msg_colon:       .asciz ":"
msg_class:       .asciz " class "
msg_newline:     .asciz "\n"
msg_moved_ok:    .asciz "pci: BAR0 and BAR1 moved: new addresses answer, old ones read all ones\n"
msg_stress_ok:   .asciz "pci: 2000 BAR moves while vCPU 1 read: every read was the ID or all ones\n"
msg_ok:          .asciz "pci: all checks passed\n"
msg_failed:      .asciz "pci: FAILED "
msg_bridge:      .asciz "host bridge at 00:00.0 is not an Intel 440BX host bridge\n"
msg_absent:      .asciz "absent function did not read all ones\n"
msg_notfound:    .asciz "no pci-testdev function on bus 0\n"
msg_lanes:       .asciz "ids read wrong through the byte and word lanes of CONFIG_DATA\n"
msg_pin:         .asciz "interrupt pin or line\n"
msg_caps:        .asciz "capability list\n"
msg_sizing:      .asciz "BAR sizing\n"
msg_placed:      .asciz "device does not answer at its placed BARs\n"
msg_moved:       .asciz "moved BARs: new address silent or old address still answering\n"
msg_reader_hung: .asciz "vCPU 1 did not finish reading\n"
msg_stress:      .asciz "a read during BAR moves was neither the ID nor all ones\n"
msg_disabled:    .asciz "memory decoding off, yet BAR0 answers (or I/O stopped)\n"

    .section .data
    .balign 4
vcpu_count:   .long 0
stress_go:    .long 0
stress_done:  .long 0
reader_done:  .long 0
stress_bad:   .long 0
stress_reads: .long 0

    .section .bss
    .balign 16
    .skip 4096
stack_top:
