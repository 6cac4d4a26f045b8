# gen1-test.s - drives every Generation 1 PC device the way an OS would, through
# the real interrupt path (in-kernel 8259 pair, IOAPIC and LAPIC).
#
# Boot: flat image, mode "long", loaded at 0x100000 (examples/gen1.toml). Only
# vCPU 0 tests; any other vCPU parks in `cli; hlt`, which blocks in the kernel
# without burning a host core until the VMM tears the VM down.
#
# One line per check goes to COM1; the first failed check prints
# "gen1: FAILED <check>: <detail>" and exits with status 1 through debug-exit.
#   acpi       SMI command 0xf0 sets PM1a_CNT.SCI_EN
#   pm timer   monotonic over 1000 reads; counts at 3.579545 MHz against PIT
#              counter 2 (a 65535-clock one-shot gated through port 0x61,
#              both of its ends bracketed by PM timer reads: exact under load)
#   pit        counter 0, mode 2 at ~1 kHz, IRQ 0 through the 8259 (remapped
#              to vectors 0x20-0x2f), ticks counted over ~100 ms of PM timer,
#              then a latched count read back
#
# Periodic interrupts are counted against the PM timer within 10%. Ticks the
# host's scheduler costs are not the device's fault: while the vCPU does not
# run, the interrupt controller holds one pending edge per line, so the lower
# bound only counts the time the guest saw itself run (see pm_wait), and a
# measurement is tried up to ATTEMPTS times. Extra ticks always fail.
#   rtc        date and time read with the UIP protocol in BCD, binary and
#              12-hour binary, all agreeing; printed as ISO 8601 UTC with the
#              weekday register, so the integration test can check it against
#              its own clock (the guest has no reference for the wall time)
#   rtc periodic  PIE at the power-on rate (1024 Hz), IRQ 8 through the IOAPIC
#              (pin 8 -> vector 0x48 on LAPIC 0), counted over ~100 ms
#   rtc update the update-ended interrupt (UIE) on IRQ 8 through the 8259
#              slave, within one second, with the seconds moving on
#   i8042      controller self-test, interface test, keyboard reset and
#              identify (translated), command byte round trip
#   i8042 irqs a keyboard echo on IRQ 1 (8259 master) and an aux byte on
#              IRQ 12 (8259 slave), each read by its interrupt handler
#
# FINAL_ACTION (as --defsym) picks how a passing run ends:
#   0 debug-exit status 0 (gen1-test.bin)
#   1 ACPI S5: PM1a_CNT <- SLP_TYP 5 | SLP_EN (gen1-poweroff.bin)
#   2 i8042 pulse of the reset line: command 0xfe (gen1-reset.bin)
#   3 an ACPI shutdown as an OS does it (gen1-powerbutton.bin): enable the
#     power button event, take its SCI (IRQ 9 through the IOAPIC, level-
#     triggered, active high as the MADT override would say), acknowledge
#     PWRBTN_STS, check the line fell (no second SCI), then S5. The VM config
#     presses the button through the acpi-pm `power_button` input.
# In modes 1-3 the guest fails with status 1 if it still runs 2 s after its
# request (mode 3: or if no SCI comes within 5 s).
#
# PVM note: CPL0 code is interpreted (a few million instructions/s), so every
# wait is bounded by the PM timer or an iteration count, never by `hlt`.

    .intel_syntax noprefix
    .code64

    .ifndef FINAL_ACTION
    .equ FINAL_ACTION, 0
    .endif

    .equ STACK_SIZE,    16384

    # 8259 pair
    .equ PIC1_CMD,      0x20
    .equ PIC1_DATA,     0x21
    .equ PIC2_CMD,      0xa0
    .equ PIC2_DATA,     0xa1
    .equ PIC_EOI,       0x20
    .equ VEC_PIC_BASE,  0x20            # IRQ n -> vector 0x20 + n

    # 8254
    .equ PIT_CH0,       0x40
    .equ PIT_CH2,       0x42
    .equ PIT_CTRL,      0x43
    .equ PORT_B,        0x61
    .equ PIT_HZ,        1193182
    .equ PIT_DIVISOR,   1193            # ~1000.15 Hz
    .equ PIT_ONESHOT,   0xffff          # counter 2 one-shot length in PIT clocks

    # MC146818A
    .equ CMOS_INDEX,    0x70
    .equ CMOS_DATA,     0x71
    .equ RTC_A,         0x0a
    .equ RTC_B,         0x0b
    .equ RTC_C,         0x0c
    .equ RTC_CENTURY,   0x32
    .equ RTC_B_POWERON, 0x02            # 24-hour, BCD
    .equ RTC_B_BINARY,  0x04
    .equ RTC_B_24H,     0x02
    .equ RTC_B_PIE,     0x40
    .equ RTC_B_UIE,     0x10
    .equ RTC_HZ,        1024            # register A power-on rate 6
    .equ VEC_RTC,       0x48

    # IOAPIC / LAPIC (identity-mapped by the VMM's page tables)
    .equ IOAPIC_BASE,   0xfec00000
    .equ LAPIC_BASE,    0xfee00000
    .equ LAPIC_TPR,     0x80
    .equ LAPIC_EOI,     0xb0
    .equ LAPIC_SVR,     0xf0
    .equ VEC_SPURIOUS,  0xff

    # i8042
    .equ KBC_DATA,      0x60
    .equ KBC_STATUS,    0x64
    .equ KBC_OBF,       0x01
    .equ KBC_IBF,       0x02
    .equ KBC_AUX,       0x20

    # ACPI PM (acpi-pm defaults)
    .equ PM1A_EVT,      0x600           # PM1_STS; PM1_EN at +2
    .equ PM1A_CNT,      0x604
    .equ PWRBTN,        0x0100          # PWRBTN_STS / PWRBTN_EN
    .equ SCI_IRQ,       9
    .equ VEC_SCI,       0x49
    .equ PM_TMR,        0x608
    .equ SMI_CMD,       0xb2
    .equ ACPI_ENABLE,   0xf0
    .equ SCI_EN,        0x0001
    .equ PM_HZ,         3579545
    .equ PM_MASK,       0xffffff
    .equ S5_SLEEP,      (5 << 10) | (1 << 13)

    .equ INTERVAL,      PM_HZ / 10      # ~100 ms of PM timer
    .equ FINAL_WAIT,    2 * PM_HZ       # how long a power-off or reset may take
    .equ SPIN_LIMIT,    200000          # polls of a status bit before giving up
    .equ STALL_GAP,     PM_HZ / 2000    # 0.5 ms between two reads: the vCPU was not running
    .equ ATTEMPTS,      3               # rate measurements before a rate check fails

    .section .text.head, "ax"
    .globl _start
_start:
    cld
    test rdi, rdi
    jnz park
    lea rsp, [rip + stack_top]

    call idt_setup
    call pic_setup
    call pm_init

    call check_acpi
    call check_pm_timer
    call check_pit
    call check_rtc_time
    call check_rtc_periodic
    call check_rtc_update
    call check_i8042
    call check_i8042_irqs

    lea rsi, [rip + msg_all_ok]
    call uart_puts
    mov rax, [rip + stray_count]
    call uart_putdec
    lea rsi, [rip + msg_all_ok_end]
    call uart_puts

.if FINAL_ACTION == 0
    xor eax, eax
    jmp debug_exit
.elseif FINAL_ACTION == 1
    jmp power_off_s5
.elseif FINAL_ACTION == 2
    lea rsi, [rip + msg_reset]
    call uart_puts
    call kbc_wait_input_empty
    mov al, 0xfe
    out KBC_STATUS, al
    mov rcx, FINAL_WAIT
    call pm_wait
    lea rsi, [rip + msg_fail_reset]
    jmp fail
.elseif FINAL_ACTION == 3
    call wait_power_button
    jmp power_off_s5
.else
    .error "FINAL_ACTION must be 0, 1, 2 or 3"
.endif

# SLP_TYP 5 | SLP_EN: the VMM ends the VM; returning from it is a failure.
power_off_s5:
    lea rsi, [rip + msg_s5]
    call uart_puts
    mov dx, PM1A_CNT
    mov ax, S5_SLEEP
    out dx, ax
    mov rcx, FINAL_WAIT
    call pm_wait
    lea rsi, [rip + msg_fail_s5]
    jmp fail

park:
    cli
    hlt
    jmp park

# ---------------------------------------------------------------------------
# Failure reporting (never return).

# rsi = "<check>: <detail>".
fail:
    cli
    mov r15, rsi
    lea rsi, [rip + msg_failed]
    call uart_puts
    mov rsi, r15
    call uart_puts
    lea rsi, [rip + msg_newline]
    call uart_puts
    mov al, 1
    jmp debug_exit

# rsi = "<check>: <detail>", rax = a value to show after it in hex.
fail_hex:
    cli
    mov r14, rax
    mov r15, rsi
    lea rsi, [rip + msg_failed]
    call uart_puts
    mov rsi, r15
    call uart_puts
    mov rax, r14
    call uart_puthex
    lea rsi, [rip + msg_newline]
    call uart_puts
    mov al, 1
    jmp debug_exit

# rsi = "<check>: <detail>", rax = a value to show after it in decimal.
fail_dec:
    cli
    mov r14, rax
    mov r15, rsi
    lea rsi, [rip + msg_failed]
    call uart_puts
    mov rsi, r15
    call uart_puts
    mov rax, r14
    call uart_putdec
    lea rsi, [rip + msg_newline]
    call uart_puts
    mov al, 1
    jmp debug_exit

# ---------------------------------------------------------------------------
# IDT: every vector gets a stub that reports it as unexpected, then the
# handlers this test expects replace theirs.

idt_setup:
    lea r9, [rip + isr_stubs]
    xor ecx, ecx
1:  mov rax, r9
    call idt_set
    add r9, 16
    inc ecx
    cmp ecx, 256
    jb 1b
    mov ecx, VEC_PIC_BASE + 0
    lea rax, [rip + irq0_handler]
    call idt_set
    mov ecx, VEC_PIC_BASE + 1
    lea rax, [rip + irq1_handler]
    call idt_set
    mov ecx, VEC_PIC_BASE + 8
    lea rax, [rip + irq8_handler]
    call idt_set
    mov ecx, VEC_PIC_BASE + 12
    lea rax, [rip + irq12_handler]
    call idt_set
    mov ecx, VEC_PIC_BASE + 7
    lea rax, [rip + pic1_spurious_handler]
    call idt_set
    mov ecx, VEC_PIC_BASE + 15
    lea rax, [rip + pic2_spurious_handler]
    call idt_set
    mov ecx, VEC_RTC
    lea rax, [rip + rtc_handler]
    call idt_set
    mov ecx, VEC_SCI
    lea rax, [rip + sci_handler]
    call idt_set
    mov ecx, VEC_SPURIOUS
    lea rax, [rip + lapic_spurious_handler]
    call idt_set
    lidt [rip + idtr]
    ret

# Stubs: 16 bytes each, so vector n's is at isr_stubs + 16 n. Vectors without
# a CPU error code push a 0 in its place: the frame is then always
# [vector, error, rip, cs, rflags, rsp, ss].
    .balign 16
isr_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    push 0
    .endif
    push vec
    jmp unexpected_vector
    .set vec, vec + 1
    .endr

unexpected_vector:
    lea rsi, [rip + msg_failed]
    call uart_puts
    lea rsi, [rip + msg_unexpected]
    call uart_puts
    mov rax, [rsp]
    call uart_puthex
    lea rsi, [rip + msg_error_code]
    call uart_puts
    mov rax, [rsp + 8]
    call uart_puthex
    lea rsi, [rip + msg_at_rip]
    call uart_puts
    mov rax, [rsp + 16]
    call uart_puthex
    lea rsi, [rip + msg_newline]
    call uart_puts
    mov al, 1
    jmp debug_exit

irq0_handler:
    push rax
    inc qword ptr [rip + pit_ticks]
    mov al, PIC_EOI
    out PIC1_CMD, al
    pop rax
    iretq

# Device handlers check their device's status first, as an OS driver does:
# an interrupt with nothing behind it (an edge the controller latched earlier)
# is counted as stray, not as the device's.

# The i8042's output buffer holds a keyboard byte: reading it lowers IRQ 1.
irq1_handler:
    push rax
    in al, KBC_STATUS
    and al, KBC_OBF | KBC_AUX
    cmp al, KBC_OBF
    jne 1f
    in al, KBC_DATA
    mov [rip + kbd_irq_byte], al
    inc qword ptr [rip + kbd_irq_count]
    jmp 2f
1:  inc qword ptr [rip + stray_count]
2:  mov al, PIC_EOI
    out PIC1_CMD, al
    pop rax
    iretq

# ... an aux byte: reading it lowers IRQ 12.
irq12_handler:
    push rax
    in al, KBC_STATUS
    and al, KBC_OBF | KBC_AUX
    cmp al, KBC_OBF | KBC_AUX
    jne 1f
    in al, KBC_DATA
    mov [rip + aux_irq_byte], al
    inc qword ptr [rip + aux_irq_count]
    jmp 2f
1:  inc qword ptr [rip + stray_count]
2:  mov al, PIC_EOI
    out PIC2_CMD, al
    out PIC1_CMD, al
    pop rax
    iretq

# The RTC on the 8259 slave: reading register C acknowledges it (IRQ 8 falls);
# IRQF says whether it had asked.
irq8_handler:
    push rax
    mov al, RTC_C
    out CMOS_INDEX, al
    in al, CMOS_DATA
    test al, 0x80
    jz 1f
    mov [rip + rtc_c_seen], al
    inc qword ptr [rip + rtc_update_count]
    jmp 2f
1:  inc qword ptr [rip + stray_count]
2:  mov al, PIC_EOI
    out PIC2_CMD, al
    out PIC1_CMD, al
    pop rax
    iretq

# The RTC through the IOAPIC: after register C is read, the next periodic flag
# raises IRQ 8 again, a fresh edge for the edge-triggered pin.
rtc_handler:
    push rax
    mov al, RTC_C
    out CMOS_INDEX, al
    in al, CMOS_DATA
    test al, 0x80
    jz 1f
    inc qword ptr [rip + rtc_ticks]
    jmp 2f
1:  inc qword ptr [rip + stray_count]
2:  mov rax, LAPIC_BASE
    mov dword ptr [rax + LAPIC_EOI], 0
    pop rax
    iretq

# The SCI: level-triggered, so the status bit must be cleared (lowering the
# line) before the EOI, or the IOAPIC delivers it again at once.
sci_handler:
    push rax
    push rdx
    mov dx, PM1A_EVT
    in ax, dx
    test ax, PWRBTN
    jz 1f
    mov [rip + sci_status], ax
    mov ax, PWRBTN
    out dx, ax                          # write 1 to clear
    inc qword ptr [rip + sci_count]
    jmp 2f
1:  inc qword ptr [rip + stray_count]
2:  mov rax, LAPIC_BASE
    mov dword ptr [rax + LAPIC_EOI], 0
    pop rdx
    pop rax
    iretq

# Spurious interrupts need no EOI from their own controller; a spurious IRQ 15
# did put IRQ 2 in service on the master. They are counted as stray, not
# failures: an OS must tolerate them.
pic1_spurious_handler:
    inc qword ptr [rip + stray_count]
    iretq

pic2_spurious_handler:
    push rax
    inc qword ptr [rip + stray_count]
    mov al, PIC_EOI
    out PIC1_CMD, al
    pop rax
    iretq

lapic_spurious_handler:
    inc qword ptr [rip + stray_count]
    iretq

# ---------------------------------------------------------------------------
# 8259 pair: ICW1-4, IRQs 0-7 at vectors 0x20-0x27, 8-15 at 0x28-0x2f, slave
# on IRQ 2, 8086 mode; everything masked until a check unmasks its line.
# Checks run this again before unmasking: a masked line still latches edges
# in IRR (every ISA IRQ reaches the 8259s as well as the IOAPIC), and ICW1
# resets the edge-sense logic, so no stale interrupt arrives on unmasking.

pic_setup:
    mov al, 0x11                        # ICW1: edge, cascade, ICW4 follows
    out PIC1_CMD, al
    out PIC2_CMD, al
    mov al, VEC_PIC_BASE                # ICW2: vector bases
    out PIC1_DATA, al
    mov al, VEC_PIC_BASE + 8
    out PIC2_DATA, al
    mov al, 0x04                        # ICW3: slave on IRQ 2 / slave id 2
    out PIC1_DATA, al
    mov al, 0x02
    out PIC2_DATA, al
    mov al, 0x01                        # ICW4: 8086 mode, normal EOI
    out PIC1_DATA, al
    out PIC2_DATA, al
    mov al, 0xff
    out PIC1_DATA, al
    out PIC2_DATA, al
    # Read the masks back (OCW1 reads the IMR): both controllers took ICW1-4.
    in al, PIC1_DATA
    cmp al, 0xff
    jne 1f
    in al, PIC2_DATA
    cmp al, 0xff
    jne 1f
    ret
1:  movzx eax, al
    lea rsi, [rip + msg_fail_pic_mask]
    jmp fail_hex

# ---------------------------------------------------------------------------
# PM timer: the 24-bit count extended to 64 bits, which holds as long as
# pm_now runs at least once per wrap of the register (4.69 s); every wait
# here reads it continuously.

pm_init:
    mov dx, PM_TMR
    in eax, dx
    and eax, PM_MASK
    mov [rip + pm_last], eax
    mov qword ptr [rip + pm_acc], 0
    ret

# rax = extended count. Clobbers rdx.
pm_now:
    mov dx, PM_TMR
    in eax, dx
    and eax, PM_MASK
    mov edx, eax
    sub eax, [rip + pm_last]
    and eax, PM_MASK
    mov [rip + pm_last], edx
    add [rip + pm_acc], rax
    mov rax, [rip + pm_acc]
    ret

# Busy-waits rcx PM counts; rax = the counts that actually passed. Bounded by
# iterations too, so a stuck timer fails instead of hanging. [stall_counts] =
# the sum of the gaps between consecutive reads of at least STALL_GAP: time
# this vCPU did not run (the host preempted it), during which a periodic
# interrupt piles up in the controller as one. Clobbers rdx, r8-r11.
pm_wait:
    mov r10, rcx
    call pm_now
    mov r9, rax                         # start
    mov r11, rax                        # previous read
    mov qword ptr [rip + stall_counts], 0
    mov r8d, 50000000
1:  call pm_now
    mov rdx, rax
    sub rdx, r11
    mov r11, rax
    cmp rdx, STALL_GAP
    jb 2f
    add [rip + stall_counts], rdx
2:  sub rax, r9
    cmp rax, r10
    jae 3f
    dec r8d
    jnz 1b
    lea rsi, [rip + msg_fail_pm_stuck]
    jmp fail
3:  ret

# Busy-waits until the qword at rdi is nonzero, for at most rcx PM counts.
# rax = the counts waited; CF set on timeout. Clobbers rdx, r8-r10.
pm_wait_nonzero:
    mov r10, rcx
    call pm_now
    mov r9, rax
    mov r8d, 50000000
1:  call pm_now
    sub rax, r9
    cmp qword ptr [rdi], 0
    jne 2f
    cmp rax, r10
    jae 3f
    dec r8d
    jnz 1b
3:  stc
    ret
2:  clc
    ret

# ---------------------------------------------------------------------------
# ACPI: the SMI command switches the platform into ACPI mode.

check_acpi:
    mov dx, PM1A_CNT
    in ax, dx
    test ax, SCI_EN
    jz 1f
    movzx eax, ax
    lea rsi, [rip + msg_fail_acpi_early]
    jmp fail_hex
1:  mov al, ACPI_ENABLE
    out SMI_CMD, al
    mov ecx, SPIN_LIMIT
2:  mov dx, PM1A_CNT
    in ax, dx
    test ax, SCI_EN
    jnz 3f
    pause
    dec ecx
    jnz 2b
    movzx eax, ax
    lea rsi, [rip + msg_fail_acpi_enable]
    jmp fail_hex
3:  lea rsi, [rip + msg_acpi_ok]
    call uart_puts
    ret

# ---------------------------------------------------------------------------
# PM timer: monotonic, and 3.579545 MHz measured against the PIT's 1.193182 MHz.

check_pm_timer:
    # 1000 back-to-back reads: every step forward and small (a step back shows
    # as a huge step modulo 2^24).
    mov dx, PM_TMR
    in eax, dx
    and eax, PM_MASK
    mov r12d, eax                       # previous raw value
    xor r13d, r13d                      # total advance
    mov ebx, 1000
1:  in eax, dx
    and eax, PM_MASK
    mov ecx, eax
    sub ecx, r12d
    and ecx, PM_MASK
    cmp ecx, 0x800000                   # half the wrap or more: it went back
    jae 2f
    add r13, rcx
    mov r12d, eax
    dec ebx
    jnz 1b
    test r13, r13
    jnz 3f
    lea rsi, [rip + msg_fail_pm_static]
    jmp fail
2:  mov rax, rcx
    lea rsi, [rip + msg_fail_pm_back]
    jmp fail_hex

3:  # The rate: PIT counter 2 counts PIT_ONESHOT clocks from its gate's rise
    # to OUT2's, which takes D = PIT_ONESHOT * PM_HZ / PIT_HZ = 196604.96 PM
    # counts. Both ends are bracketed by PM reads, so the check is exact
    # however slowly the vCPU polls: the shortest possible span (last read
    # before OUT2 was seen low, minus the first read after the gate rose) must
    # not exceed D, the longest (first read after OUT2 was seen high, minus
    # the last read before the gate rose) must reach it; 0.5% slack for the
    # clock edges at both ends.
    call pm_init                        # the loop above read the timer behind pm_now's back
    in al, PORT_B
    and al, 0xfc                        # gate 2 low, speaker off
    out PORT_B, al
    mov al, 0xb0                        # counter 2, LSB then MSB, mode 0, binary
    out PIT_CTRL, al
    mov al, PIT_ONESHOT & 0xff
    out PIT_CH2, al
    mov al, PIT_ONESHOT >> 8
    out PIT_CH2, al
    in al, PORT_B
    test al, 0x20
    jz 4f
    movzx eax, al
    lea rsi, [rip + msg_fail_out2_early]
    jmp fail_hex
4:  call pm_now
    mov rbx, rax                        # before the gate rises
    in al, PORT_B
    or al, 0x01                         # gate 2 high: counting starts
    out PORT_B, al
    call pm_now
    mov r12, rax                        # after it rose
    mov r14, rax                        # last read before OUT2 was seen low
    mov r15d, 10000000
5:  call pm_now
    mov r13, rax
    in al, PORT_B
    test al, 0x20
    jnz 6f
    mov r14, r13
    dec r15d
    jnz 5b
    lea rsi, [rip + msg_fail_out2_never]
    jmp fail
6:  call pm_now
    mov r13, rax                        # after OUT2 was seen high
    in al, PORT_B
    and al, 0xfc
    out PORT_B, al
    sub r14, r12                        # shortest span
    sub r13, rbx                        # longest span
    mov rax, PIT_ONESHOT * PM_HZ * 1005 / (PIT_HZ * 1000)
    cmp r14, rax
    ja 7f
    mov rax, PIT_ONESHOT * PM_HZ * 995 / (PIT_HZ * 1000)
    cmp r13, rax
    jb 7f
    lea rsi, [rip + msg_pm_ok1]
    call uart_puts
    mov rax, PIT_ONESHOT
    call uart_putdec
    lea rsi, [rip + msg_pm_ok2]
    call uart_puts
    call print_span
    lea rsi, [rip + msg_pm_ok3]
    call uart_puts
    ret
7:  lea rsi, [rip + msg_failed]
    call uart_puts
    lea rsi, [rip + msg_fail_pm_rate]
    call uart_puts
    call print_span
    lea rsi, [rip + msg_newline]
    call uart_puts
    mov al, 1
    jmp debug_exit

# Prints "r14-r13 PM counts (expect 196604)".
print_span:
    mov rax, r14
    call uart_putdec
    lea rsi, [rip + msg_dash]
    call uart_puts
    mov rax, r13
    call uart_putdec
    lea rsi, [rip + msg_pm_expect]
    call uart_puts
    ret

# ---------------------------------------------------------------------------
# PIT counter 0 at ~1 kHz, IRQ 0 through the master 8259.

check_pit:
    mov r15d, 1                         # attempt
1:  call pic_setup                      # also forgets edges latched while IRQ 0 was masked
    mov al, 0x34                        # counter 0, LSB then MSB, mode 2, binary
    out PIT_CTRL, al
    mov al, PIT_DIVISOR & 0xff
    out PIT_CH0, al
    mov al, PIT_DIVISOR >> 8
    out PIT_CH0, al
    mov qword ptr [rip + pit_ticks], 0
    mov al, 0xfe                        # unmask IRQ 0 only
    out PIC1_DATA, al
    sti
    mov rcx, INTERVAL
    call pm_wait
    cli
    mov r13, rax                        # PM counts elapsed
    mov r12, [rip + pit_ticks]
    # A latch command freezes the running count for reading: mode 2 counts
    # PIT_DIVISOR down to 1.
    xor eax, eax                        # counter 0 latch
    out PIT_CTRL, al
    in al, PIT_CH0
    mov bl, al
    in al, PIT_CH0
    mov bh, al
    movzx ebx, bx
    mov al, 0xff
    out PIC1_DATA, al
    mov al, 0x30                        # a control word alone stops counter 0: no more edges
    out PIT_CTRL, al
    test ebx, ebx
    jz 2f
    cmp ebx, PIT_DIVISOR
    jbe 3f
2:  mov eax, ebx
    lea rsi, [rip + msg_fail_pit_latch]
    jmp fail_hex

3:  mov rcx, PIT_HZ
    mov rdi, PIT_DIVISOR
    call tick_rate_check
    jnc 4f
    inc r15d
    cmp r15d, ATTEMPTS
    jbe 1b
    lea rsi, [rip + msg_fail_pit]
    lea rdi, [rip + msg_pit_via]
    jmp fail_rate
4:  lea rsi, [rip + msg_pit_ok1]
    call uart_puts
    lea rsi, [rip + msg_pit_via]
    call print_rate
    lea rsi, [rip + msg_pit_latch]
    call uart_puts
    mov eax, ebx
    call uart_putdec
    lea rsi, [rip + msg_close_paren]
    call uart_puts
    ret

# Whether r12 periodic interrupts in r13 PM counts, at rcx / rdi Hz, are
# right. A late or extra interrupt is a device bug: at most 10% (+1) over the
# rate across the whole interval. Lost ones are a device bug only while the
# vCPU ran: at least 10% under the rate across the time it was not stalled
# ([stall_counts], see pm_wait). r14 = the expected count. CF set when wrong.
# Clobbers rax, rcx, rdx, rsi, rdi.
tick_rate_check:
    mov rsi, rcx
    mov rax, r13
    mul rsi
    imul rcx, rdi, PM_HZ
    div rcx
    mov r14, rax                        # expected over the interval
    imul rax, r12, 10
    imul rdx, r14, 11
    add rdx, 10
    cmp rax, rdx
    ja 2f
    mov rax, r13
    sub rax, [rip + stall_counts]
    jae 1f
    xor eax, eax
1:  mul rsi
    div rcx                             # expected while the vCPU ran
    imul rax, rax, 9
    imul rdx, r12, 10
    cmp rdx, rax
    jb 2f
    clc
    ret
2:  stc
    ret

# Prints "<r12> ticks in ~<r13 as ms> ms (<text at rsi>; expect <r14>, vCPU
# stalled ~<ms> ms, attempt <r15>". Clobbers rax, rcx, rdx, rsi, r8.
print_rate:
    push rsi
    mov rax, r12
    call uart_putdec
    lea rsi, [rip + msg_ticks_in]
    call uart_puts
    mov rax, r13
    call pm_to_ms
    call uart_putdec
    lea rsi, [rip + msg_ms_open]
    call uart_puts
    pop rsi
    call uart_puts
    lea rsi, [rip + msg_expect]
    call uart_puts
    mov rax, r14
    call uart_putdec
    lea rsi, [rip + msg_stalled]
    call uart_puts
    mov rax, [rip + stall_counts]
    call pm_to_ms
    call uart_putdec
    lea rsi, [rip + msg_attempt]
    call uart_puts
    mov eax, r15d
    call uart_putdec
    ret

# rsi = "<check>: ", rdi = the interrupt path text: the last attempt's
# numbers (print_rate), then exit 1.
fail_rate:
    cli
    push rdi
    push rsi
    lea rsi, [rip + msg_failed]
    call uart_puts
    pop rsi
    call uart_puts
    pop rsi
    dec r15d
    call print_rate
    lea rsi, [rip + msg_fail_rate_end]
    call uart_puts
    mov al, 1
    jmp debug_exit

# rax = PM counts -> rax = milliseconds. Clobbers rcx, rdx.
pm_to_ms:
    mov rcx, 1000
    mul rcx
    mov rcx, PM_HZ
    div rcx
    ret

# ---------------------------------------------------------------------------
# RTC date and time.

# al = index -> al = value.
cmos_read:
    out CMOS_INDEX, al
    in al, CMOS_DATA
    ret

# al = index, ah = value.
cmos_write:
    out CMOS_INDEX, al
    mov al, ah
    out CMOS_DATA, al
    ret

# Waits while register A's UIP bit is set (it lasts 244 us before each update).
# Clobbers rax, rcx.
rtc_wait_not_uip:
    mov ecx, SPIN_LIMIT
1:  mov al, RTC_A
    call cmos_read
    test al, 0x80
    jz 2f
    pause
    dec ecx
    jnz 1b
    lea rsi, [rip + msg_fail_uip]
    jmp fail
2:  ret

# rax = the eight clock registers as read, one per byte from bit 0 up:
# seconds, minutes, hours, weekday, day, month, year, century. Clobbers rcx, rdx, r8.
rtc_read_clock:
    xor edx, edx
    mov ecx, 7
1:  lea r8, [rip + rtc_clock_registers]
    mov al, [r8 + rcx]
    call cmos_read
    shl rdx, 8
    mov dl, al
    dec ecx
    jns 1b
    mov rax, rdx
    ret

# rax = the clock registers, read until two reads outside an update agree.
# Clobbers rcx, rdx, r8-r10.
rtc_read_stable:
    mov r9d, 10
1:  call rtc_wait_not_uip
    call rtc_read_clock
    mov r10, rax
    call rtc_wait_not_uip
    call rtc_read_clock
    cmp rax, r10
    je 2f
    dec r9d
    jnz 1b
    lea rsi, [rip + msg_fail_unstable]
    jmp fail
2:  ret

# rax = packed BCD bytes -> rax = packed binary bytes; fails on a digit > 9.
# Clobbers rcx, rdx, r8-r10.
bcd_to_binary:
    mov rdx, rax
    xor r8d, r8d
    mov ecx, 8
1:  rol rdx, 8                          # the next byte from the top, into dl
    movzx r9d, dl
    mov r10d, r9d
    and r10d, 0x0f
    shr r9d, 4
    cmp r10d, 9
    ja 2f
    cmp r9d, 9
    ja 2f
    imul r9d, r9d, 10
    add r9d, r10d
    shl r8, 8
    or r8, r9
    dec ecx
    jnz 1b
    mov rax, r8
    ret
2:  mov rax, rdx
    lea rsi, [rip + msg_fail_bcd]
    jmp fail_hex

# rax = packed binary 24-hour registers -> rax with the hour byte as a 12-hour
# clock shows it (1-12, bit 7 = PM). Clobbers rcx, rdx.
to_twelve_hour:
    mov rcx, rax
    shr rcx, 16
    and ecx, 0xff                       # hour 0-23
    xor edx, edx
    cmp ecx, 12
    jb 1f
    sub ecx, 12
    mov edx, 0x80
1:  test ecx, ecx
    jnz 2f
    mov ecx, 12
2:  or ecx, edx
    shl rcx, 16
    mov rdx, 0xff << 16
    not rdx
    and rax, rdx
    or rax, rcx
    ret

# ah = new register B.
rtc_set_b:
    mov al, RTC_B
    jmp cmos_write

check_rtc_time:
    mov al, RTC_B
    call cmos_read
    cmp al, RTC_B_POWERON
    je 1f
    movzx eax, al
    lea rsi, [rip + msg_fail_rtc_b]
    jmp fail_hex
1:  mov r13d, 3                         # a second boundary between the reads: try again
2:  mov ah, RTC_B_24H
    call rtc_set_b
    call rtc_read_stable
    call bcd_to_binary
    mov r12, rax                        # BCD read, converted
    mov ah, RTC_B_24H | RTC_B_BINARY
    call rtc_set_b
    call rtc_read_stable
    mov rbx, rax                        # binary read
    mov ah, RTC_B_BINARY                # 12-hour binary
    call rtc_set_b
    call rtc_read_stable
    mov r14, rax
    mov ah, RTC_B_POWERON
    call rtc_set_b
    cmp r12, rbx
    jne 3f
    mov rax, rbx
    call to_twelve_hour
    cmp rax, r14
    je 4f
3:  dec r13d
    jnz 2b
    mov rax, r12
    lea rsi, [rip + msg_fail_rtc_agree]
    cmp r12, rbx
    jne fail_hex
    mov rax, r14
    lea rsi, [rip + msg_fail_rtc_12h]
    jmp fail_hex

4:  # Ranges (binary): seconds, minutes < 60, hours < 24, weekday 1-7, day
    # 1-31, month 1-12, year < 100, century 19-99.
    lea r8, [rip + rtc_limits]
    xor ecx, ecx
5:  mov rax, rbx
    shl ecx, 3
    shr rax, cl
    shr ecx, 3
    movzx eax, al
    cmp al, [r8 + 2 * rcx]
    jb 6f
    cmp al, [r8 + 2 * rcx + 1]
    ja 6f
    inc ecx
    cmp ecx, 8
    jb 5b
    jmp 7f
6:  mov rax, rbx
    lea rsi, [rip + msg_fail_rtc_range]
    jmp fail_hex

7:  lea rsi, [rip + msg_rtc_ok1]
    call uart_puts
    mov rax, rbx
    shr rax, 56                         # century
    imul rax, rax, 100
    mov rcx, rbx
    shr rcx, 48
    movzx ecx, cl                       # year
    add rax, rcx
    call uart_putdec
    mov al, '-'
    mov ecx, 40                         # month
    call rtc_put_field
    mov al, '-'
    mov ecx, 32                         # day
    call rtc_put_field
    mov al, 'T'
    mov ecx, 16                         # hour
    call rtc_put_field
    mov al, ':'
    mov ecx, 8                          # minute
    call rtc_put_field
    mov al, ':'
    mov ecx, 0                          # second
    call rtc_put_field
    lea rsi, [rip + msg_rtc_ok2]
    call uart_puts
    mov rax, rbx
    shr rax, 24
    movzx eax, al
    call uart_putdec
    lea rsi, [rip + msg_rtc_ok3]
    call uart_puts
    ret

# Prints the character al, then the byte of rbx at bit cl as two decimal digits.
rtc_put_field:
    sub rsp, 8
    mov [rsp], al
    mov rax, rbx
    shr rax, cl
    movzx eax, al
    mov cl, 10
    div cl                              # al = tens, ah = ones
    add ax, '0' | ('0' << 8)
    mov [rsp + 1], ax
    mov byte ptr [rsp + 3], 0
    mov rsi, rsp
    call uart_puts
    add rsp, 8
    ret

# ---------------------------------------------------------------------------
# RTC periodic interrupt through the IOAPIC: pin 8, edge, active high, fixed
# delivery to APIC 0 at VEC_RTC. The 8259 keeps IRQ 8 masked meanwhile.

check_rtc_periodic:
    mov rbx, LAPIC_BASE
    mov eax, [rbx + LAPIC_SVR]
    or eax, 0x100 | VEC_SPURIOUS        # software-enable the LAPIC
    mov [rbx + LAPIC_SVR], eax
    mov dword ptr [rbx + LAPIC_TPR], 0
    mov rbx, IOAPIC_BASE
    mov dword ptr [rbx], 0x10 + 2 * 8 + 1
    mov dword ptr [rbx + 0x10], 0       # destination APIC 0
    mov dword ptr [rbx], 0x10 + 2 * 8
    mov dword ptr [rbx + 0x10], VEC_RTC # unmasked
    mov dword ptr [rbx], 0x10 + 2 * 8
    mov eax, [rbx + 0x10]
    cmp eax, VEC_RTC
    je 1f
    lea rsi, [rip + msg_fail_ioapic]
    jmp fail_hex

1:  mov al, RTC_A
    call cmos_read
    and al, 0x7f
    cmp al, 0x26                        # 32.768 kHz time base, rate 6 = 1024 Hz
    je 2f
    movzx eax, al
    lea rsi, [rip + msg_fail_rtc_a]
    jmp fail_hex
2:  mov r15d, 1                         # attempt
3:  mov qword ptr [rip + rtc_ticks], 0
    mov al, RTC_C
    call cmos_read                      # no stale flags
    mov ah, RTC_B_POWERON | RTC_B_PIE
    call rtc_set_b
    sti
    mov rcx, INTERVAL
    call pm_wait
    cli
    mov r13, rax
    mov r12, [rip + rtc_ticks]
    mov ah, RTC_B_POWERON
    call rtc_set_b
    mov al, RTC_C
    call cmos_read
    mov rcx, RTC_HZ
    mov edi, 1
    call tick_rate_check
    jnc 4f
    inc r15d
    cmp r15d, ATTEMPTS
    jbe 3b
    lea rsi, [rip + msg_fail_rtcp]
    lea rdi, [rip + msg_rtcp_via]
    jmp fail_rate
4:  mov rbx, IOAPIC_BASE
    mov dword ptr [rbx], 0x10 + 2 * 8
    mov dword ptr [rbx + 0x10], 0x10000 | VEC_RTC   # masked again
    lea rsi, [rip + msg_rtcp_ok1]
    call uart_puts
    lea rsi, [rip + msg_rtcp_via]
    call print_rate
    lea rsi, [rip + msg_close_paren]
    call uart_puts
    ret

# ---------------------------------------------------------------------------
# RTC update-ended interrupt through the 8259 slave (IRQ 8 -> vector 0x28),
# cascaded through the master's IRQ 2.

check_rtc_update:
    call pic_setup                      # forget edges latched while IRQ 8 was masked
    call rtc_read_stable
    movzx r12d, al                      # seconds (BCD) before
    mov al, RTC_C
    call cmos_read                      # no stale flags
    mov qword ptr [rip + rtc_update_count], 0
    mov byte ptr [rip + rtc_c_seen], 0
    mov al, 0xfe                        # slave: IRQ 8 only
    out PIC2_DATA, al
    mov al, 0xfb                        # master: the cascade (IRQ 2) only
    out PIC1_DATA, al
    mov ah, RTC_B_POWERON | RTC_B_UIE
    call rtc_set_b
    sti
    lea rdi, [rip + rtc_update_count]
    mov rcx, PM_HZ * 6 / 5              # an update comes every second: 1.2 s
    call pm_wait_nonzero
    cli
    setc bl
    mov r13, rax
    mov ah, RTC_B_POWERON
    call rtc_set_b
    mov al, 0xff
    out PIC1_DATA, al
    out PIC2_DATA, al
    mov al, RTC_C
    call cmos_read
    test bl, bl
    jz 1f
    lea rsi, [rip + msg_fail_uie_none]
    jmp fail
1:  movzx eax, byte ptr [rip + rtc_c_seen]
    mov ecx, eax
    and ecx, 0x90
    cmp ecx, 0x90                       # IRQF and UF
    je 2f
    lea rsi, [rip + msg_fail_uie_c]
    jmp fail_hex
2:  call rtc_read_stable
    movzx eax, al
    call bcd_to_binary
    mov r14, rax                        # seconds after
    mov eax, r12d
    call bcd_to_binary
    # The seconds moved on by one (two if an update slipped in between the
    # read and enabling UIE).
    mov ecx, r14d
    sub ecx, eax
    add ecx, 60
    cmp ecx, 60
    jb 3f
    sub ecx, 60
3:  cmp ecx, 1
    jb 4f
    cmp ecx, 2
    ja 4f
    lea rsi, [rip + msg_uie_ok1]
    call uart_puts
    mov rax, r13
    call pm_to_ms
    call uart_putdec
    lea rsi, [rip + msg_uie_ok2]
    call uart_puts
    movzx eax, byte ptr [rip + rtc_c_seen]
    call uart_puthex
    lea rsi, [rip + msg_close_paren]
    call uart_puts
    ret
4:  mov eax, ecx
    lea rsi, [rip + msg_fail_uie_seconds]
    jmp fail_dec

# ---------------------------------------------------------------------------
# i8042.

# Waits until the controller can take a byte (IBF clear). Clobbers rax, rcx.
kbc_wait_input_empty:
    mov ecx, SPIN_LIMIT
1:  in al, KBC_STATUS
    test al, KBC_IBF
    jz 2f
    pause
    dec ecx
    jnz 1b
    lea rsi, [rip + msg_fail_kbc_ibf]
    jmp fail
2:  ret

# al = the next output byte; fails if none comes. Clobbers rcx.
kbc_read:
    mov ecx, SPIN_LIMIT
1:  in al, KBC_STATUS
    test al, KBC_OBF
    jnz 2f
    pause
    dec ecx
    jnz 1b
    lea rsi, [rip + msg_fail_kbc_obf]
    jmp fail
2:  in al, KBC_DATA
    ret

# al = command for port 0x64. Clobbers rax, rcx.
kbc_command:
    push rax
    call kbc_wait_input_empty
    pop rax
    out KBC_STATUS, al
    ret

# al = byte for port 0x60. Clobbers rax, rcx.
kbc_data:
    push rax
    call kbc_wait_input_empty
    pop rax
    out KBC_DATA, al
    ret

# Reads the next byte and fails with the message at rsi unless it is bl.
kbc_expect:
    call kbc_read
    cmp al, bl
    jne 1f
    ret
1:  movzx eax, al
    jmp fail_hex

.macro KBC_EXPECT byte, msg
    mov bl, \byte
    lea rsi, [rip + \msg]
    call kbc_expect
.endm

check_i8042:
    # Whatever the keyboard said at power-on (its BAT result) is not ours.
    mov edx, 32
1:  in al, KBC_STATUS
    test al, KBC_OBF
    jz 2f
    in al, KBC_DATA
    dec edx
    jnz 1b
    lea rsi, [rip + msg_fail_kbc_drain]
    jmp fail

2:  mov al, 0xaa                        # controller self-test
    call kbc_command
    KBC_EXPECT 0x55, msg_fail_kbc_selftest
    mov al, 0xab                        # keyboard interface test
    call kbc_command
    KBC_EXPECT 0x00, msg_fail_kbc_iftest
    mov al, 0xff                        # keyboard reset: ACK, then BAT passed
    call kbc_data
    KBC_EXPECT 0xfa, msg_fail_kbd_reset_ack
    KBC_EXPECT 0xaa, msg_fail_kbd_reset_bat
    mov al, 0xf2                        # identify: ACK, then AB 83, which translation makes AB 41
    call kbc_data
    KBC_EXPECT 0xfa, msg_fail_kbd_id_ack
    KBC_EXPECT 0xab, msg_fail_kbd_id1
    KBC_EXPECT 0x41, msg_fail_kbd_id2

    # Command byte: read it, write another, read that back, restore.
    mov al, 0x20
    call kbc_command
    call kbc_read
    movzx r12d, al
    mov al, 0x60
    call kbc_command
    mov al, 0x65                        # translate, aux disabled, system flag, keyboard IRQ
    call kbc_data
    mov al, 0x20
    call kbc_command
    KBC_EXPECT 0x65, msg_fail_kbc_cmdbyte
    mov al, 0x60
    call kbc_command
    mov al, r12b
    call kbc_data
    mov al, 0x20
    call kbc_command
    mov bl, r12b
    lea rsi, [rip + msg_fail_kbc_restore]
    call kbc_expect
    # Nothing left over.
    in al, KBC_STATUS
    test al, KBC_OBF
    jz 3f
    movzx eax, al
    lea rsi, [rip + msg_fail_kbc_extra]
    jmp fail_hex
3:  lea rsi, [rip + msg_kbc_ok1]
    call uart_puts
    mov rax, r12
    call uart_puthex
    lea rsi, [rip + msg_close_paren]
    call uart_puts
    ret

# i8042 interrupts: with both interrupt bits in the command byte, a keyboard
# byte raises IRQ 1 and an aux byte IRQ 12; the handlers take the bytes.
check_i8042_irqs:
    mov al, 0x20
    call kbc_command
    call kbc_read
    movzx r12d, al                      # command byte to restore
    mov al, 0x60
    call kbc_command
    mov al, 0x47                        # translate, system, both interrupts, both ports enabled
    call kbc_data
    mov qword ptr [rip + kbd_irq_count], 0
    mov qword ptr [rip + aux_irq_count], 0
    mov byte ptr [rip + kbd_irq_byte], 0
    mov byte ptr [rip + aux_irq_byte], 0
    call pic_setup                      # forget edges latched while IRQs 1 and 12 were masked
    mov al, 0xf9                        # master: IRQ 1 and the cascade
    out PIC1_DATA, al
    mov al, 0xef                        # slave: IRQ 12
    out PIC2_DATA, al
    sti

    mov al, 0xee                        # keyboard echo
    call kbc_data
    lea rdi, [rip + kbd_irq_count]
    mov rcx, PM_HZ / 20                 # 50 ms: the reply is immediate
    call pm_wait_nonzero
    jnc 1f
    lea rsi, [rip + msg_fail_irq1]
    jmp fail
1:  movzx eax, byte ptr [rip + kbd_irq_byte]
    cmp al, 0xee
    je 2f
    lea rsi, [rip + msg_fail_irq1_byte]
    jmp fail_hex

2:  mov al, 0xd3                        # write the aux output buffer: as if the mouse sent it
    call kbc_command
    mov al, 0x5a
    call kbc_data
    lea rdi, [rip + aux_irq_count]
    mov rcx, PM_HZ / 20
    call pm_wait_nonzero
    jnc 3f
    lea rsi, [rip + msg_fail_irq12]
    jmp fail
3:  movzx eax, byte ptr [rip + aux_irq_byte]
    cmp al, 0x5a
    je 4f
    lea rsi, [rip + msg_fail_irq12_byte]
    jmp fail_hex

4:  cli
    mov al, 0xff
    out PIC1_DATA, al
    out PIC2_DATA, al
    # Exactly one interrupt each: the handlers' reads lowered the lines.
    mov rax, [rip + kbd_irq_count]
    add rax, [rip + aux_irq_count]
    cmp rax, 2
    je 5f
    lea rsi, [rip + msg_fail_irq_count]
    jmp fail_dec
5:  mov al, 0x60
    call kbc_command
    mov al, r12b
    call kbc_data
    lea rsi, [rip + msg_kbc_irq_ok]
    call uart_puts
    ret

# Power button: PWRBTN_EN, IOAPIC pin 9 level-triggered, wait for the SCI.
wait_power_button:
    mov qword ptr [rip + sci_count], 0
    mov rbx, IOAPIC_BASE
    mov dword ptr [rbx], 0x10 + 2 * SCI_IRQ + 1
    mov dword ptr [rbx + 0x10], 0       # destination APIC 0
    mov dword ptr [rbx], 0x10 + 2 * SCI_IRQ
    mov dword ptr [rbx + 0x10], 0x8000 | VEC_SCI    # level, active high, unmasked
    mov dx, PM1A_EVT + 2
    mov ax, PWRBTN
    out dx, ax
    sti
    lea rdi, [rip + sci_count]
    mov rcx, 5 * PM_HZ
    call pm_wait_nonzero
    jnc 1f
    lea rsi, [rip + msg_fail_sci_none]
    jmp fail
1:  mov r13, rax
    # The handler's write to PM1_STS lowered the line: 10 ms without another.
    mov rcx, PM_HZ / 100
    call pm_wait
    cli
    mov rax, [rip + sci_count]
    cmp rax, 1
    je 2f
    lea rsi, [rip + msg_fail_sci_storm]
    jmp fail_dec
2:  mov dx, PM1A_EVT
    in ax, dx
    test ax, PWRBTN
    jz 3f
    movzx eax, ax
    lea rsi, [rip + msg_fail_sci_status]
    jmp fail_hex
3:  lea rsi, [rip + msg_sci_ok1]
    call uart_puts
    mov rax, r13
    call pm_to_ms
    call uart_putdec
    lea rsi, [rip + msg_sci_ok2]
    call uart_puts
    movzx eax, word ptr [rip + sci_status]
    call uart_puthex
    lea rsi, [rip + msg_close_paren]
    call uart_puts
    ret

    .include "lib64.inc"
    .include "idt64.inc"

    .section .rodata
# Clock register indices in rtc_read_clock's byte order, and each byte's
# binary range as (min, max) pairs.
rtc_clock_registers: .byte 0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, RTC_CENTURY
rtc_limits: .byte 0, 59,  0, 59,  0, 23,  1, 7,  1, 31,  1, 12,  0, 99,  19, 99

msg_newline:        .asciz "\n"
msg_close_paren:    .asciz ")\n"
msg_failed:         .asciz "gen1: FAILED "
msg_all_ok:         .asciz "gen1: all checks passed ("
msg_all_ok_end:     .asciz " stray or spurious interrupts)\n"
msg_s5:             .asciz "gen1: powering off through ACPI S5\n"
msg_reset:          .asciz "gen1: resetting through the i8042 (command 0xfe)\n"
msg_ticks_in:       .asciz " ticks in ~"
msg_ms_open:        .asciz " ms ("
msg_expect:         .asciz "; expect "
msg_stalled:        .asciz ", vCPU stalled ~"
msg_attempt:        .asciz " ms, attempt "
msg_fail_rate_end:  .asciz "), outside the bounds in every attempt\n"
msg_dash:           .asciz "-"
msg_pm_expect:      .asciz " PM counts (expect 196605)"
msg_acpi_ok:        .asciz "gen1: acpi ok: SMI command 0xf0 set SCI_EN in PM1a_CNT\n"
msg_pm_ok1:         .asciz "gen1: pm timer ok: monotonic over 1000 reads; PIT counter 2's "
msg_pm_ok2:         .asciz " clocks took "
msg_pm_ok3:         .asciz "\n"
msg_pit_ok1:        .asciz "gen1: pit ok: "
msg_pit_via:        .asciz "IRQ 0 through the 8259 at 1000 Hz"
msg_pit_latch:      .asciz "; latched count "
msg_rtc_ok1:        .asciz "gen1: rtc ok: "
msg_rtc_ok2:        .asciz "Z weekday "
msg_rtc_ok3:        .asciz " (BCD, binary and 12-hour reads agree)\n"
msg_rtcp_ok1:       .asciz "gen1: rtc periodic ok: "
msg_rtcp_via:       .asciz "IRQ 8 through the IOAPIC at 1024 Hz"
msg_kbc_ok1:        .asciz "gen1: i8042 ok: self-test, interface test, keyboard reset and identify, command byte round trip (was "
msg_uie_ok1:        .asciz "gen1: rtc update ok: update-ended interrupt on IRQ 8 through the 8259 slave after ~"
msg_uie_ok2:        .asciz " ms, seconds moved on (register C "
msg_kbc_irq_ok:     .asciz "gen1: i8042 irqs ok: keyboard echo on IRQ 1 (8259 master), aux byte on IRQ 12 (8259 slave)\n"
msg_sci_ok1:        .asciz "gen1: power button ok: SCI on IRQ 9 through the IOAPIC (level-triggered) after ~"
msg_sci_ok2:        .asciz " ms, acknowledged once (PM1_STS "
msg_unexpected:     .asciz "interrupts: unexpected vector "
msg_error_code:     .asciz " error "
msg_at_rip:         .asciz " at rip "

msg_fail_s5:        .asciz "acpi: still running 2 s after S5 (SLP_TYP 5 | SLP_EN)"
msg_fail_reset:     .asciz "i8042: still running 2 s after reset command 0xfe"
msg_fail_pic_mask:  .asciz "pic: interrupt mask register reads back "
msg_fail_pm_stuck:  .asciz "pm timer: does not advance while waiting"
msg_fail_acpi_early: .asciz "acpi: SCI_EN already set before the SMI command, PM1a_CNT "
msg_fail_acpi_enable: .asciz "acpi: SCI_EN still clear after SMI command 0xf0, PM1a_CNT "
msg_fail_pm_static: .asciz "pm timer: 1000 reads returned the same count"
msg_fail_pm_back:   .asciz "pm timer: went backwards or jumped by "
msg_fail_out2_early: .asciz "pit: OUT2 high before counter 2 was started, port 0x61 "
msg_fail_out2_never: .asciz "pit: counter 2 one-shot never raised OUT2 in port 0x61"
msg_fail_pm_rate:   .asciz "pm timer: wrong rate against PIT counter 2, whose 65535 clocks took "
msg_fail_pit_latch: .asciz "pit: latched count of counter 0 outside 1-1193: "
msg_fail_pit:       .asciz "pit: "
msg_fail_uip:       .asciz "rtc: UIP never cleared in register A"
msg_fail_unstable:  .asciz "rtc: clock registers never read the same twice"
msg_fail_bcd:       .asciz "rtc: non-BCD digit in the clock registers "
msg_fail_rtc_b:     .asciz "rtc: register B at power-on is not 0x02 (24-hour BCD) but "
msg_fail_rtc_agree: .asciz "rtc: BCD and binary reads disagree, BCD read as binary "
msg_fail_rtc_12h:   .asciz "rtc: 12-hour read disagrees with the 24-hour read, 12-hour registers "
msg_fail_rtc_range: .asciz "rtc: a clock register is out of range, registers "
msg_fail_ioapic:    .asciz "ioapic: redirection entry 8 reads back "
msg_fail_rtc_a:     .asciz "rtc: register A at power-on is not 0x26 but "
msg_fail_rtcp:      .asciz "rtc periodic: "
msg_fail_uie_none:  .asciz "rtc update: no update-ended interrupt on IRQ 8 within 1.2 s"
msg_fail_uie_c:     .asciz "rtc update: register C in the handler lacks IRQF and UF: "
msg_fail_uie_seconds: .asciz "rtc update: seconds moved by "
msg_fail_irq1:      .asciz "i8042 irqs: no IRQ 1 after keyboard echo (0xee)"
msg_fail_irq1_byte: .asciz "i8042 irqs: IRQ 1 handler read "
msg_fail_irq12:     .asciz "i8042 irqs: no IRQ 12 after writing the aux output buffer (0xd3)"
msg_fail_irq12_byte: .asciz "i8042 irqs: IRQ 12 handler read "
msg_fail_irq_count: .asciz "i8042 irqs: expected one interrupt each, counted "
msg_fail_sci_none:  .asciz "acpi: no power button SCI on IRQ 9 within 5 s"
msg_fail_sci_storm: .asciz "acpi: the SCI kept coming after PWRBTN_STS was cleared, times "
msg_fail_sci_status: .asciz "acpi: PWRBTN_STS still set after clearing it, PM1_STS "
msg_fail_kbc_ibf:   .asciz "i8042: input buffer never emptied"
msg_fail_kbc_obf:   .asciz "i8042: no reply byte (OBF never set)"
msg_fail_kbc_drain: .asciz "i8042: output buffer never empties"
msg_fail_kbc_selftest: .asciz "i8042: self-test (0xaa) replied "
msg_fail_kbc_iftest: .asciz "i8042: interface test (0xab) replied "
msg_fail_kbd_reset_ack: .asciz "i8042: keyboard reset (0xff) not acknowledged, got "
msg_fail_kbd_reset_bat: .asciz "i8042: keyboard reset did not pass its self-test, got "
msg_fail_kbd_id_ack: .asciz "i8042: keyboard identify (0xf2) not acknowledged, got "
msg_fail_kbd_id1:   .asciz "i8042: keyboard identify byte 1 is not 0xab but "
msg_fail_kbd_id2:   .asciz "i8042: keyboard identify byte 2 is not 0x41 (0x83 translated) but "
msg_fail_kbc_cmdbyte: .asciz "i8042: command byte 0x65 reads back "
msg_fail_kbc_restore: .asciz "i8042: restored command byte reads back "
msg_fail_kbc_extra: .asciz "i8042: output buffer still full afterwards, status "

    .section .data
    .balign 8
idtr:
    .word 256 * 16 - 1
    .quad idt
    .balign 8
pit_ticks:      .quad 0
rtc_ticks:      .quad 0
stray_count: .quad 0
rtc_update_count: .quad 0
sci_count:      .quad 0
sci_status:     .word 0
    .balign 8
kbd_irq_count:  .quad 0
aux_irq_count:  .quad 0
rtc_c_seen:     .byte 0
kbd_irq_byte:   .byte 0
aux_irq_byte:   .byte 0
    .balign 8
pm_acc:         .quad 0
stall_counts:   .quad 0
pm_last:        .long 0

    .section .bss
    .balign 4096
idt:        .skip 256 * 16
stack:      .skip STACK_SIZE
stack_top:
