# reset-once.bin - proves on_reset = "restart": the first boot marks CMOS NVRAM and resets the
# machine through the i8042; the next boot finds the mark (the cmos-rtc plugin's NVRAM file
# carries it across the cold reset), says so on COM1 and exits 0 through debug-exit.
#
# Boot: flat image, mode "real", at 0x7c00. Needs cmos-rtc with an `nvram` file, i8042,
# serial16550 and debug-exit; the config sets on_reset = "restart".

    .intel_syntax noprefix
    .code16

    .equ CMOS_INDEX, 0x70
    .equ CMOS_DATA,  0x71
    .equ MARK_INDEX, 0x40          # an NVRAM byte, clear of the clock registers
    .equ MARK,       0x5a
    .equ KBC_CMD,    0x64
    .equ COM1,       0x3f8
    .equ DEBUG_EXIT, 0xf4

    .section .text.head, "ax"
    .globl _start
_start:
    mov al, MARK_INDEX
    out CMOS_INDEX, al
    in al, CMOS_DATA
    cmp al, MARK
    je rebooted

    mov al, MARK_INDEX              # first boot: leave the mark, then pulse the reset line
    out CMOS_INDEX, al
    mov al, MARK
    out CMOS_DATA, al
    mov al, 0xfe
    out KBC_CMD, al
1:  jmp 1b                          # the VMM restarts the machine

rebooted:
    mov al, MARK_INDEX              # leave NVRAM as the test found it
    out CMOS_INDEX, al
    xor al, al
    out CMOS_DATA, al
    mov si, offset message
2:  lodsb
    test al, al
    jz 4f
    mov ah, al
    mov dx, COM1 + 5
3:  in al, dx                       # wait for THR empty
    test al, 0x20
    jz 3b
    mov dx, COM1
    mov al, ah
    out dx, al
    jmp 2b
4:  xor al, al
    out DEBUG_EXIT, al
5:  jmp 5b

message: .asciz "reset-once: came back after a reset\n"
