# insn-fallback.bin - instructions some hosts' KVM cannot emulate at CPL0, completed by Veneer.
#
# Boot: flat image, mode "long", loaded and entered at 0x100000 (CPL0, identity map).
#
# On a software KVM (PVM) guest CPL0 code is interpreted, and `fwait` and `int3` end in an
# emulation failure; Veneer steps over `fwait` and delivers `int3` as the #BP trap the CPU would
# have raised. Elsewhere the CPU runs them itself; the checks are the same either way:
#   - FWAIT_COUNT `fwait`s (and the `wait` spelling) fall through with registers intact;
#   - each `int3` reaches the #BP handler once, with the saved RIP just after the int3 and the
#     saved CS, RFLAGS and RSP of the interrupted code, and execution continues after it.
# Prints "insn-fallback: ..." lines and exits 0 when all pass, 1 otherwise.

    .intel_syntax noprefix
    .code64

    .equ FWAIT_COUNT, 3
    .equ INT3_COUNT,  2
    .equ STACK_SIZE,  4096

    .section .text.head, "ax"
    .globl _start
_start:
    cld
    lea rsp, [rip + stack_top]
    call idt_setup

    # fwait, three times, with a canary in every general register the VMM might touch.
    mov rax, 0x1111111111111111
    mov rbx, 0x2222222222222222
    mov rcx, 0x3333333333333333
    mov rdx, 0x4444444444444444
    .rept FWAIT_COUNT - 1
    fwait
    .endr
    wait
    mov r8, 0x1111111111111111
    cmp rax, r8
    jne fail_fwait
    mov r8, 0x2222222222222222
    cmp rbx, r8
    jne fail_fwait
    mov r8, 0x3333333333333333
    cmp rcx, r8
    jne fail_fwait
    mov r8, 0x4444444444444444
    cmp rdx, r8
    jne fail_fwait
    lea rsi, [rip + msg_fwait_ok]
    call uart_puts

    # int3: the handler records the frame; compare it with what this code knows.
    mov r12, rsp                    # RSP of the interrupted code
    pushfq
    pop r13                         # its RFLAGS
    int3
after_first_int3:
    lea rax, [rip + after_first_int3]
    call check_frame
    int3
after_second_int3:
    lea rax, [rip + after_second_int3]
    call check_frame_again
    cmp qword ptr [rip + bp_count], INT3_COUNT
    jne fail_count
    lea rsi, [rip + msg_int3_ok]
    call uart_puts
    lea rsi, [rip + msg_all_ok]
    call uart_puts
    xor eax, eax
    jmp debug_exit

# rax = the RIP the frame must hold. The call pushed 8 bytes: the interrupted RSP was r12.
check_frame:
check_frame_again:
    cmp [rip + bp_rip], rax
    jne fail_rip
    cmp qword ptr [rip + bp_cs], 0x08
    jne fail_frame
    cmp [rip + bp_rsp], r12
    jne fail_frame
    mov rax, [rip + bp_rflags]      # the system flags (IF, TF, IOPL, NT) must be the caller's;
    and rax, 0x7300                 # arithmetic flags differ by the compare in between
    mov rdx, r13
    and rdx, 0x7300
    cmp rax, rdx
    jne fail_frame
    ret

fail_fwait:
    lea rsi, [rip + msg_fail_fwait]
    jmp fail
fail_rip:
    lea rsi, [rip + msg_fail_rip]
    call uart_puts
    mov rax, [rip + bp_rip]
    call uart_puthex
    lea rsi, [rip + msg_newline]
    jmp fail
fail_frame:
    lea rsi, [rip + msg_fail_frame]
    jmp fail
fail_count:
    lea rsi, [rip + msg_fail_count]
fail:
    call uart_puts
    mov al, 1
    jmp debug_exit

idt_setup:
    lea r9, [rip + unexpected_stubs]
    xor ecx, ecx
1:  mov rax, r9
    call idt_set
    add r9, 16
    inc ecx
    cmp ecx, 32
    jb 1b
    mov ecx, 3
    lea rax, [rip + bp_handler]
    call idt_set
    lidt [rip + idtr]
    ret

# #BP: a trap with no error code; the frame is [rip, cs, rflags, rsp, ss].
bp_handler:
    push rax
    mov rax, [rsp + 8]
    mov [rip + bp_rip], rax
    mov rax, [rsp + 16]
    mov [rip + bp_cs], rax
    mov rax, [rsp + 24]
    mov [rip + bp_rflags], rax
    mov rax, [rsp + 32]
    mov [rip + bp_rsp], rax
    inc qword ptr [rip + bp_count]
    pop rax
    iretq

# Any other exception: report its vector and fail.
    .balign 16
unexpected_stubs:
    .set vec, 0
    .rept 32
    .balign 16
    mov eax, vec
    jmp unexpected_vector
    .set vec, vec + 1
    .endr
unexpected_vector:
    lea rsp, [rip + stack_top]
    push rax
    lea rsi, [rip + msg_unexpected]
    call uart_puts
    pop rax
    call uart_putdec
    lea rsi, [rip + msg_newline]
    jmp fail

    .include "lib64.inc"
    .include "idt64.inc"

    .section .data
msg_fwait_ok:   .asciz "insn-fallback: fwait ok\n"
msg_int3_ok:    .asciz "insn-fallback: int3 ok\n"
msg_all_ok:     .asciz "insn-fallback: all checks passed\n"
msg_fail_fwait: .asciz "insn-fallback: FAILED fwait changed a register\n"
msg_fail_rip:   .asciz "insn-fallback: FAILED #BP frame RIP "
msg_fail_frame: .asciz "insn-fallback: FAILED #BP frame CS/RSP/RFLAGS\n"
msg_fail_count: .asciz "insn-fallback: FAILED #BP count\n"
msg_unexpected: .asciz "insn-fallback: FAILED unexpected exception "
msg_newline:    .asciz "\n"
    .balign 8
bp_rip:     .quad 0
bp_cs:      .quad 0
bp_rflags:  .quad 0
bp_rsp:     .quad 0
bp_count:   .quad 0
idtr:       .word 256 * 16 - 1
            .quad idt

    .section .bss
    .balign 4096
idt:        .skip 256 * 16
stack:      .skip STACK_SIZE
stack_top:
