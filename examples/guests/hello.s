# hello.bin - real-mode (16-bit) UART smoke test.
#
# Boot: flat image, mode "real", loaded and entered at 0x7c00 with all
# segment registers 0 and interrupts off.
#
# Drives COM1 the way a real 16550A driver would (so a VMM's UART model is
# exercised beyond "write THR, hope"), prints a greeting, then checks the
# scratch register and loopback mode. Exit status via the debug-exit port:
# 0 = all good, 1 = a check failed ("hello: FAILED <what>" is printed first).

    .code16
    .intel_syntax noprefix

    .equ COM1,      0x3f8
    .equ THR,       COM1 + 0        # also RBR (read) and DLL (DLAB=1)
    .equ IER,       COM1 + 1        # also DLM (DLAB=1)
    .equ FCR,       COM1 + 2
    .equ LCR,       COM1 + 3
    .equ MCR,       COM1 + 4
    .equ LSR,       COM1 + 5
    .equ SCR,       COM1 + 7
    .equ MCR_NORMAL, 0x0b           # DTR | RTS | OUT2
    .equ MCR_LOOP,   0x1b           # ... | LOOP
    .equ DEBUG_EXIT, 0xf4

    # Port numbers above 0xff need DX; a macro keeps the init sequence legible.
    .macro outb port, val
        mov dx, \port
        mov al, \val
        out dx, al
    .endm

    .section .text.head, "ax"
    .globl _start
_start:
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00                  # stack grows down from just below the image
    cld

    outb IER, 0                     # we poll; no UART interrupts
    outb LCR, 0x80                  # DLAB on to reach the divisor latch
    outb THR, 1                     # DLL: divisor 1 = 115200 baud
    outb IER, 0                     # DLM: divisor high byte
    outb LCR, 0x03                  # 8N1, DLAB off
    outb FCR, 0x07                  # enable FIFOs, clear both
    outb MCR, MCR_NORMAL

    mov si, offset greeting
    call puts

    # Scratch register: a 16450/16550 has it, an 8250 or a missing device does not.
    outb SCR, 0xa5
    in al, dx                       # dx still holds SCR
    mov si, offset what_scratch
    cmp al, 0xa5
    jne fail

    # Loopback: the transmitter is wired to the receiver, nothing leaves the
    # chip. The FIFO was cleared above, so the next received byte is ours.
    outb MCR, MCR_LOOP
    outb THR, 'V'
    mov cx, 0xffff                  # bounded: a broken model must not hang us
1:  mov dx, LSR
    in al, dx
    test al, 0x01                   # data ready
    jnz 2f
    pause
    loop 1b
    mov si, offset what_loop_dr
    jmp fail
2:  mov dx, THR
    in al, dx
    mov bl, al
    outb MCR, MCR_NORMAL            # back to the wire before we print anything
    mov si, offset what_loop_data
    cmp bl, 'V'
    jne fail

    xor al, al
    jmp debug_exit

# si = what failed
fail:
    push si
    outb MCR, MCR_NORMAL            # a loopback failure must not swallow its own report
    mov si, offset failed
    call puts
    pop si
    call puts
    mov al, '\n'
    call putc
    mov al, 1
debug_exit:                         # al = status; the write ends the VM
    out DEBUG_EXIT, al
3:  jmp 3b                          # not hlt: with an in-kernel irqchip it never returns

# Print the NUL-terminated string at ds:si.
puts:
    lodsb
    test al, al
    jz 4f
    call putc
    jmp puts
4:  ret

# Transmit al once the holding register is empty.
putc:
    push cx
    push dx
    mov ah, al
    mov cx, 0xffff                  # bounded wait for THRE
5:  mov dx, LSR
    in al, dx
    test al, 0x20
    jnz 6f
    pause
    loop 5b
    mov al, 1                       # cannot even report it: just fail
    jmp debug_exit
6:  mov dx, THR
    mov al, ah
    out dx, al
    pop dx
    pop cx
    ret

greeting:       .asciz "Hello from a Veneer guest!\n"
failed:         .asciz "hello: FAILED "
what_scratch:   .asciz "scratch register"
what_loop_dr:   .asciz "loopback (no data ready)"
what_loop_data: .asciz "loopback (wrong byte)"
