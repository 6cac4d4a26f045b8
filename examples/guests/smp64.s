# smp64.bin - long-mode SMP bring-up check (written for 2 vCPUs, works for
# any count up to MAX_CPUS).
#
# Boot: flat image, mode "long", loaded and entered at 0x100000 by every vCPU
# at once, with RDI = vCPU index and RSI = vCPU count.
#
# Each vCPU takes a private stack, does a little CPL0 work and verifies it,
# then checks in on a shared counter. vCPU 0 waits (bounded by the TSC) for
# all RSI vCPUs, prints "smp64: N vCPUs in long mode" and exits 0. Other
# vCPUs park on `pause` until the VMM tears the VM down.
# Exit status: 0 ok, 2 not all vCPUs arrived, 3 bad vCPU count or bad work.

    .intel_syntax noprefix
    .code64

    .equ MAX_CPUS,   64
    .equ STACK_SIZE, 4096
    .equ WAIT_TICKS, 1 << 34        # several seconds at any plausible TSC rate

    .section .text.head, "ax"
    .globl _start
_start:
    cld
    cmp rdi, MAX_CPUS               # no stack slot for such a vCPU: it can only park
    jae park                        # (vCPU 0 will see the count is too big and report)
    mov rsp, rdi                    # stack top = stacks + (index + 1) * STACK_SIZE
    inc rsp
    shl rsp, 12
    lea rax, [rip + stacks]
    add rsp, rax
    mov r12, rdi                    # callee-saved copies: the helpers clobber rdi/rsi
    mov r13, rsi

    lea rax, [rsi - 1]
    cmp rax, MAX_CPUS - 1           # count in 1..MAX_CPUS (unsigned compare also catches 0)
    ja bad_count
    cmp rdi, rsi
    jae bad_count

    # Work: sum 1..n with n differing per vCPU, checked against n(n+1)/2.
    lea rcx, [r12 + 1000]
    mov rbx, rcx
    xor eax, eax
1:  add rax, rcx
    dec rcx
    jnz 1b
    lea rdx, [rbx + 1]
    imul rbx, rdx
    shr rbx, 1
    cmp rax, rbx
    jne bad_work

    lock inc dword ptr [rip + checked_in]
    test r12, r12
    jnz park

    # vCPU 0: wait for everyone, but not forever.
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov rbx, WAIT_TICKS
    add rbx, rax                    # rbx = deadline
2:  cmp dword ptr [rip + checked_in], r13d
    je 3f
    pause
    rdtsc
    shl rdx, 32
    or rax, rdx
    cmp rax, rbx
    jb 2b
    call print_lock_acquire
    lea rsi, [rip + msg_timeout]
    call uart_puts
    mov al, 2
    jmp debug_exit

3:  call print_lock_acquire         # others could be printing a failure
    lea rsi, [rip + msg_prefix]
    call uart_puts
    mov eax, r13d
    call uart_putdec
    lea rsi, [rip + msg_suffix]
    call uart_puts
    xor eax, eax
    jmp debug_exit

park:
    pause
    jmp park

bad_count:
    call print_lock_acquire
    lea rsi, [rip + msg_bad_count]
    call uart_puts
    mov al, 3
    jmp debug_exit

bad_work:
    call print_lock_acquire
    lea rsi, [rip + msg_bad_work]
    call uart_puts
    mov rax, r12
    call uart_putdec
    lea rsi, [rip + msg_newline]
    call uart_puts
    mov al, 3
    jmp debug_exit

    .include "lib64.inc"

    .section .rodata
msg_prefix:    .asciz "smp64: "
msg_suffix:    .asciz " vCPUs in long mode\n"
msg_timeout:   .asciz "smp64: FAILED not all vCPUs checked in\n"
msg_bad_count: .asciz "smp64: FAILED bad vCPU index/count in RDI/RSI\n"
msg_bad_work:  .asciz "smp64: FAILED wrong sum on vCPU "
msg_newline:   .asciz "\n"

    .section .data
    .balign 4
checked_in: .long 0

    .section .bss
    .balign 4096
stacks: .skip MAX_CPUS * STACK_SIZE
