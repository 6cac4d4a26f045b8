# fwcfg-test.bin - reads QEMU's firmware configuration interface (the fw-cfg
# plugin) the way firmware does, and checks it against the machine.
#
# Boot: flat image, mode "long", at 0x100000 (examples/fw-cfg.toml), every
# vCPU at once with RDI = vCPU index, RSI = vCPU count; vCPUs other than 0
# park. vCPU 0 reads the signature and ID over the ports (selector 0x510,
# data 0x511), the DMA port's signature, nb_cpus (which must equal the vCPU
# count the VMM gave it) and ram_size, walks the file directory to find
# etc/e820, reads that file by DMA (0x514/0x518, big-endian access structure)
# and again over the ports, compares both, finds the RAM at 1 MiB in it, and
# checks that a DMA into the MMIO hole comes back with the error bit. Each
# step prints a line to COM1; exit status 0 only when all pass, 1 otherwise
# ("fw-cfg-test: FAILED <what>" first).

    .intel_syntax noprefix
    .code64

    .equ FW_SELECT,   0x510
    .equ FW_DATA,     0x511
    .equ FW_DMA_HIGH, 0x514
    .equ FW_DMA_LOW,  0x518
    .equ KEY_SIGNATURE, 0x00
    .equ KEY_ID,        0x01
    .equ KEY_RAM_SIZE,  0x03
    .equ KEY_NB_CPUS,   0x05
    .equ KEY_FILE_DIR,  0x19
    .equ ID_DMA,        0x02
    .equ DMA_ERROR,     0x01
    .equ DMA_READ,      0x02
    .equ DMA_SELECT,    0x08
    .equ QEMU_LE,       0x554d4551      # "QEMU" read as a little-endian dword
    .equ MAX_FILES,     64
    .equ MAX_E820,      1024            # bytes of etc/e820 we have room for
    .equ MMIO_HOLE,     0xfec00000      # the IOAPIC: not RAM

    .macro print label
        lea rsi, [rip + \label]
        call uart_puts
    .endm

    # Falls through when the condition holds.
    .macro fail_unless cond, what
        j\cond 9f
        lea rsi, [rip + \what]
        jmp fail
9:
    .endm

    .section .text.head, "ax"
    .globl _start
_start:
    cld
    test rdi, rdi
    jnz park
    lea rsp, [rip + stack_top]
    mov r15, rsi                    # r15 = vCPU count, for the whole run

    # Signature and ID over the ports.
    mov eax, KEY_SIGNATURE
    call select
    lea rdi, [rip + buffer]
    mov ecx, 4
    call read_data
    cmp dword ptr [rip + buffer], QEMU_LE
    fail_unless e, what_signature
    mov eax, KEY_ID
    call select
    lea rdi, [rip + buffer]
    mov ecx, 4
    call read_data
    mov ebx, [rip + buffer]
    test ebx, ID_DMA
    fail_unless nz, what_id
    mov dx, FW_DMA_HIGH
    in eax, dx
    cmp eax, QEMU_LE
    fail_unless e, what_dma_signature
    print msg_signature
    mov eax, ebx
    call uart_puthex
    print msg_dma_port

    # nb_cpus must be the vCPU count; ram_size is printed for the test to check.
    mov eax, KEY_NB_CPUS
    call select
    lea rdi, [rip + buffer]
    mov ecx, 2
    call read_data
    movzx eax, word ptr [rip + buffer]
    cmp rax, r15
    fail_unless e, what_cpus
    print msg_cpus
    movzx eax, word ptr [rip + buffer]
    call uart_putdec
    print msg_cpus_tail
    mov eax, KEY_RAM_SIZE
    call select
    lea rdi, [rip + buffer]
    mov ecx, 8
    call read_data
    mov r14, [rip + buffer]         # r14 = ram_size
    print msg_ram
    mov rax, r14
    shr rax, 20
    call uart_putdec
    print msg_ram_tail

    # The directory: a big-endian count, then 64-byte entries.
    mov eax, KEY_FILE_DIR
    call select
    lea rdi, [rip + buffer]
    mov ecx, 4
    call read_data
    mov r13d, [rip + buffer]
    bswap r13d                      # r13 = file count
    cmp r13d, MAX_FILES
    fail_unless be, what_dir_count
    xor r12d, r12d                  # r12 = files seen
    xor ebx, ebx                    # ebx = etc/e820 selector << 32 | size, once found
1:  cmp r12d, r13d
    jae 2f
    lea rdi, [rip + entry]
    mov ecx, 64
    call read_data
    inc r12d
    lea rsi, [rip + entry + 8]
    lea rdi, [rip + name_e820]
    mov ecx, 56
    call strneq
    jne 1b
    mov eax, [rip + entry]
    bswap eax                       # size
    movzx edx, word ptr [rip + entry + 4]
    xchg dl, dh                     # selector
    mov ebx, eax
    shl rdx, 32
    or rbx, rdx
    jmp 1b
2:  test rbx, rbx
    fail_unless nz, what_no_e820
    mov eax, ebx
    cmp eax, MAX_E820
    fail_unless be, what_e820_size
    print msg_dir
    mov eax, r13d
    call uart_putdec
    print msg_dir_mid
    mov eax, ebx
    call uart_putdec
    print msg_dir_sel
    mov rax, rbx
    shr rax, 32
    call uart_puthex
    print msg_newline

    # etc/e820 by DMA: select and read in one access.
    mov rax, rbx
    shr rax, 32
    shl eax, 16
    or eax, DMA_SELECT | DMA_READ
    mov edx, ebx                    # length
    lea rcx, [rip + e820_dma]
    call dma
    fail_unless z, what_dma_failed
    # ... and again over the ports: the same bytes.
    mov rax, rbx
    shr rax, 32
    call select
    lea rdi, [rip + e820_pio]
    mov ecx, ebx
    call read_data
    lea rsi, [rip + e820_dma]
    lea rdi, [rip + e820_pio]
    mov ecx, ebx
    call memeq
    fail_unless e, what_dma_differs
    # Find the usable RAM that starts at 1 MiB (type 1, 20-byte entries).
    lea rsi, [rip + e820_dma]
    mov ecx, ebx
    xor r12d, r12d                  # r12 = its end
3:  cmp ecx, 20
    jb 4f
    cmp qword ptr [rsi], 0x100000
    jne 5f
    cmp dword ptr [rsi + 16], 1
    jne 5f
    mov r12, [rsi]
    add r12, [rsi + 8]
5:  add rsi, 20
    sub ecx, 20
    jmp 3b
4:  test r12, r12
    fail_unless nz, what_no_ram
    cmp r12, r14
    fail_unless be, what_ram_past_size
    print msg_e820
    mov eax, ebx
    xor edx, edx
    mov ecx, 20
    div ecx
    call uart_putdec
    print msg_e820_mid
    mov rax, r12
    call uart_puthex
    print msg_newline

    # A DMA into the MMIO hole must come back with the error bit.
    mov eax, KEY_SIGNATURE << 16 | DMA_SELECT | DMA_READ
    mov edx, 4
    mov ecx, MMIO_HOLE               # zero-extended: a 64-bit immediate would sign-extend
    call dma
    test eax, DMA_ERROR
    fail_unless nz, what_hole_accepted
    print msg_hole

    print msg_pass
    xor eax, eax
    jmp debug_exit

# ax = selector.
select:
    mov dx, FW_SELECT
    out dx, ax
    ret

# Read rcx bytes of the selected item to rdi. Clobbers rax, rcx, rdx, rdi.
read_data:
    mov dx, FW_DATA
    test rcx, rcx
    jz 2f
1:  in al, dx
    mov [rdi], al
    inc rdi
    dec rcx
    jnz 1b
2:  ret

# One DMA access: eax = control, edx = length, rcx = guest address of the
# data. Returns the control word the device wrote back in eax, ZF set when 0.
# Clobbers rax, rcx, rdx, rdi.
dma:
    lea rdi, [rip + access]
    bswap eax
    mov [rdi], eax
    bswap edx
    mov [rdi + 4], edx
    bswap rcx
    mov [rdi + 8], rcx
    mov rax, rdi
    shr rax, 32
    bswap eax
    mov dx, FW_DMA_HIGH
    out dx, eax
    mov eax, edi
    bswap eax
    mov dx, FW_DMA_LOW
    out dx, eax                     # starts the transfer; done when the write returns
    mov eax, [rdi]
    bswap eax
    test eax, eax
    ret

# rsi = what failed
fail:
    push rsi
    print msg_failed
    pop rsi
    call uart_puts
    print msg_newline
    mov al, 1
    jmp debug_exit

park:
    cli
1:  hlt
    jmp 1b

    .include "lib64.inc"

    .section .rodata
name_e820:          .asciz "etc/e820"
msg_signature:      .asciz "fw-cfg-test: signature QEMU, ID "
msg_dma_port:       .asciz ", DMA port answers QEMU CFG\n"
msg_cpus:           .asciz "fw-cfg-test: nb_cpus "
msg_cpus_tail:      .asciz ", the vCPU count\n"
msg_ram:            .asciz "fw-cfg-test: ram_size "
msg_ram_tail:       .asciz " MiB\n"
msg_dir:            .asciz "fw-cfg-test: directory has "
msg_dir_mid:        .asciz " files, etc/e820 is "
msg_dir_sel:        .asciz " bytes at selector "
msg_e820:           .asciz "fw-cfg-test: etc/e820 by DMA matches the port read: "
msg_e820_mid:       .asciz " entries, RAM from 1 MiB ends at "
msg_hole:           .asciz "fw-cfg-test: DMA into the MMIO hole refused with the error bit\n"
msg_pass:           .asciz "fw-cfg-test: all checks passed\n"
msg_failed:         .asciz "fw-cfg-test: FAILED "
msg_newline:        .asciz "\n"
what_signature:     .asciz "signature is not QEMU"
what_id:            .asciz "ID lacks the DMA bit"
what_dma_signature: .asciz "DMA port does not read QEMU"
what_cpus:          .asciz "nb_cpus differs from the vCPU count"
what_dir_count:     .asciz "directory count too large"
what_no_e820:       .asciz "no etc/e820 in the directory"
what_e820_size:     .asciz "etc/e820 too large"
what_dma_failed:    .asciz "DMA read of etc/e820 set the error bit"
what_dma_differs:   .asciz "etc/e820 by DMA differs from the port read"
what_no_ram:        .asciz "no usable RAM at 1 MiB in etc/e820"
what_ram_past_size: .asciz "RAM at 1 MiB ends past ram_size"
what_hole_accepted: .asciz "DMA into the MMIO hole did not set the error bit"

    .section .bss
    .balign 16
access:     .skip 16
buffer:     .skip 16
entry:      .skip 64
e820_dma:   .skip MAX_E820
e820_pio:   .skip MAX_E820
            .skip 4096
stack_top:
