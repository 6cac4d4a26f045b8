# counter.s - a guest to manage: it counts, reports on COM1 ten times a second
# (paced by PIT interrupts), echoes what it reads on COM1, and shuts down on
# the ACPI power button. Built for examples/counter.toml (Generation 1: COM1,
# PIT, ACPI PM) and the worker tests (pause, resume, shutdown, console).
#
# Boot: flat image, mode "long", loaded at 0x100000. vCPU 0 runs the counter;
# every other vCPU parks in `cli; hlt` (blocked in the kernel, off the CPU).
#
# Output, one line every 10 PIT ticks (100 ms at 100 Hz):
#   count C tick T pm P
# C: iterations of the counting loop so far; T: PIT interrupts taken (IRQ 0
# through the 8259, vectors remapped to 0x20); P: the ACPI PM timer's time
# since start in the same 10 ms units. The PM timer follows the host clock,
# so across a pause P moves on while T does not: the gap P - T grows by the
# pause, and a PIT that replayed the ticks missed while paused would close it.
#
# Power button: PM1_STS.PWRBTN_STS is polled at each report (no SCI needed);
# when set the guest prints "power button" and enters S5 through SLP_EN.
# Bytes received on COM1 are echoed as "echo: <byte>" lines at each report.

    .intel_syntax noprefix
    .code64

    .include "lib64.inc"
    .include "idt64.inc"

    .equ STACK_SIZE,    16384
    .equ PIC1_CMD,      0x20
    .equ PIC1_DATA,     0x21
    .equ PIC2_CMD,      0xa0
    .equ PIC2_DATA,     0xa1
    .equ PIC_EOI,       0x20
    .equ VEC_PIC_BASE,  0x20
    .equ PIT_CH0,       0x40
    .equ PIT_CTRL,      0x43
    .equ PIT_DIVISOR,   11932           # 1193182 Hz / 11932 = ~100 Hz
    .equ REPORT_TICKS,  10
    .equ PM1A_EVT,      0x600
    .equ PM1A_CNT,      0x604
    .equ PM_TMR,        0x608
    .equ PWRBTN,        0x0100
    .equ SMI_CMD,       0xb2
    .equ ACPI_ENABLE,   0xf0
    .equ S5_SLEEP,      (5 << 10) | (1 << 13)
    .equ PM_PER_TICK,   35795           # 3579545 Hz / 100

    .section .text.head, "ax"
    .globl _start
_start:
    cld
    test rdi, rdi
    jnz park
    lea rsp, [rip + stack_top]

    call idt_setup
    call pic_setup
    mov al, ACPI_ENABLE                 # SCI_EN, as an OS switches to ACPI mode
    out SMI_CMD, al
    mov dx, PM_TMR
    in eax, dx
    and eax, 0xffffff
    mov [rip + pm_last], eax

    mov al, 0x34                        # counter 0, LSB then MSB, mode 2 (rate generator)
    out PIT_CTRL, al
    mov al, PIT_DIVISOR & 0xff
    out PIT_CH0, al
    mov al, PIT_DIVISOR >> 8
    out PIT_CH0, al
    mov al, 0xfe                        # unmask IRQ 0 only
    out PIC1_DATA, al

    lea rsi, [rip + msg_started]
    call uart_puts
    xor r12, r12                        # the count
    mov r13, REPORT_TICKS               # the tick of the next report
    sti

count:
    inc r12
    mov rax, [rip + pit_ticks]
    cmp rax, r13
    jb count
    add r13, REPORT_TICKS
    call report
    jmp count

# One report line, then the console echo and the power button.
report:
    call pm_update
    lea rsi, [rip + msg_count]
    call uart_puts
    mov rax, r12
    call uart_putdec
    lea rsi, [rip + msg_tick]
    call uart_puts
    mov rax, [rip + pit_ticks]
    call uart_putdec
    lea rsi, [rip + msg_pm]
    call uart_puts
    mov rax, [rip + pm_acc]
    xor edx, edx
    mov rcx, PM_PER_TICK
    div rcx
    call uart_putdec
    lea rsi, [rip + msg_newline]
    call uart_puts
    call echo_input
    mov dx, PM1A_EVT
    in ax, dx
    test ax, PWRBTN
    jnz power_button
    ret

# Folds the 24-bit PM timer's progress since the last look into pm_acc (it
# wraps every 4.7 s; reports come far more often).
pm_update:
    mov dx, PM_TMR
    in eax, dx
    and eax, 0xffffff
    mov ecx, eax
    sub eax, [rip + pm_last]
    and eax, 0xffffff
    mov [rip + pm_last], ecx
    add [rip + pm_acc], rax
    ret

# Every byte waiting in the receive buffer: "echo: <byte>".
echo_input:
    mov dx, COM1_LSR
    in al, dx
    test al, 1                          # data ready
    jz 1f
    mov dx, COM1
    in al, dx
    mov [rip + echo_byte], al
    lea rsi, [rip + msg_echo]
    call uart_puts
    lea rsi, [rip + echo_byte]
    call uart_puts
    lea rsi, [rip + msg_newline]
    call uart_puts
    jmp echo_input
1:  ret

power_button:
    cli
    mov dx, PM1A_EVT
    mov ax, PWRBTN
    out dx, ax                          # write 1 to clear
    lea rsi, [rip + msg_power_button]
    call uart_puts
    mov dx, PM1A_CNT
    mov ax, S5_SLEEP
    out dx, ax
    lea rsi, [rip + msg_s5_failed]
    call uart_puts
park:
    cli
    hlt
    jmp park

# Every vector reports itself as unexpected and stops the guest, except IRQ 0
# and the 8259's spurious IRQ 7.
idt_setup:
    xor ecx, ecx
1:  lea rax, [rip + unexpected]
    call idt_set
    inc ecx
    cmp ecx, 256
    jb 1b
    mov ecx, VEC_PIC_BASE + 0
    lea rax, [rip + irq0_handler]
    call idt_set
    mov ecx, VEC_PIC_BASE + 7
    lea rax, [rip + spurious_handler]
    call idt_set
    lidt [rip + idtr]
    ret

unexpected:
    lea rsi, [rip + msg_unexpected]
    call uart_puts
    jmp park

irq0_handler:
    push rax
    inc qword ptr [rip + pit_ticks]
    mov al, PIC_EOI
    out PIC1_CMD, al
    pop rax
    iretq

spurious_handler:
    iretq

# 8259 pair: IRQs 0-7 at vectors 0x20-0x27, 8-15 at 0x28-0x2f, all masked.
pic_setup:
    mov al, 0x11
    out PIC1_CMD, al
    out PIC2_CMD, al
    mov al, VEC_PIC_BASE
    out PIC1_DATA, al
    mov al, VEC_PIC_BASE + 8
    out PIC2_DATA, al
    mov al, 0x04
    out PIC1_DATA, al
    mov al, 0x02
    out PIC2_DATA, al
    mov al, 0x01
    out PIC1_DATA, al
    out PIC2_DATA, al
    mov al, 0xff
    out PIC1_DATA, al
    out PIC2_DATA, al
    ret

    .section .rodata
msg_started:      .asciz "counter: started\n"
msg_count:        .asciz "count "
msg_tick:         .asciz " tick "
msg_pm:           .asciz " pm "
msg_newline:      .asciz "\n"
msg_echo:         .asciz "echo: "
msg_power_button: .asciz "power button\n"
msg_s5_failed:    .asciz "counter: FAILED still running after S5\n"
msg_unexpected:   .asciz "counter: FAILED unexpected interrupt or exception\n"

    .section .data
    .balign 8
idtr:
    .word 256 * 16 - 1
    .quad idt
    .balign 8
pit_ticks:  .quad 0
pm_acc:     .quad 0
pm_last:    .long 0
echo_byte:  .byte 0, 0

    .section .bss
    .balign 4096
idt:        .skip 256 * 16
stack:      .skip STACK_SIZE
stack_top:
