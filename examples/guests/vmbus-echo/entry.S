/*
 * Entry, interrupt stubs and the CPL0 <-> CPL3 switch.
 *
 * Boot contract (flat, long mode): entered at the first byte of the image with the VMM's GDT
 * and 4 GiB identity map, RDI = vCPU index, RSI = vCPU count, RSP = 0, interrupts off, by
 * every vCPU at once.
 */
    .intel_syntax noprefix
    .code64

    .equ KERNEL_DS, 0x10

    .section .text.head, "ax"
    .globl _start
_start:
    cli
    cld
    mov r12, rdi                        /* vCPU index */
    mov r13, rsi                        /* vCPU count */
    test r12, r12
    jnz ap_entry
    /* .bss is not part of the image: never assume the VMM zeroed it. */
    lea rdi, [rip + _image_end]
    add rdi, 7
    and rdi, -8
    lea rcx, [rip + _end]
    sub rcx, rdi
    add rcx, 7
    shr rcx, 3
    xor eax, eax
    rep stosq
    mov dword ptr [rip + bss_ready], 1  /* other vCPUs may use .bss from now on */
    lea rsp, [rip + kernel_stack_top]
    mov rdi, r12
    mov rsi, r13
    call kmain
1:  pause                               /* kmain never returns; backstop only */
    jmp 1b

/* Every other vCPU starts here too (flat boot): it waits until vCPU 0 has cleared .bss, then
 * enters kmain on a stack of its own (up to AP_STACKS of them; the rest park). */
    .equ AP_STACKS, 3
    .equ AP_STACK_SIZE, 16384
ap_entry:
    cmp r12, AP_STACKS
    ja 2f
1:  pause
    cmp dword ptr [rip + bss_ready], 0
    je 1b
    lea rsp, [rip + ap_stacks]
    mov rax, r12
    shl rax, 14                         /* * AP_STACK_SIZE: the top of stack r12 - 1 */
    add rsp, rax
    mov rdi, r12
    mov rsi, r13
    call kmain
2:  cli
    hlt
    jmp 2b

    .data
    .balign 4
bss_ready:
    .long 0

    .text

/* Exceptions 0-31: push a dummy error code where the CPU pushes none, then the vector. */
.macro EXC_NOERR vec
exc_\vec:
    push 0
    push \vec
    jmp exc_common
.endm
.macro EXC_ERR vec
exc_\vec:
    push \vec
    jmp exc_common
.endm

EXC_NOERR 0
EXC_NOERR 1
EXC_NOERR 2
EXC_NOERR 3
EXC_NOERR 4
EXC_NOERR 5
/* #UD doubles as the way back from CPL3 (see run_user): only the ud2 at user_return_ud2,
 * executed at CPL3, is a return; any other #UD is a failure like every exception. */
exc_6:
    cmp qword ptr [rsp], OFFSET user_return_ud2     /* frame: rip, cs, rflags, rsp, ss */
    jne 1f
    test byte ptr [rsp + 8], 3
    jnz user_return
1:  push 0
    push 6
    jmp exc_common
EXC_NOERR 7
EXC_ERR   8
EXC_NOERR 9
EXC_ERR   10
EXC_ERR   11
EXC_ERR   12
EXC_ERR   13
EXC_ERR   14
EXC_NOERR 15
EXC_NOERR 16
EXC_ERR   17
EXC_NOERR 18
EXC_NOERR 19
EXC_NOERR 20
EXC_ERR   21
EXC_NOERR 22
EXC_NOERR 23
EXC_NOERR 24
EXC_NOERR 25
EXC_NOERR 26
EXC_NOERR 27
EXC_NOERR 28
EXC_ERR   29
EXC_ERR   30
EXC_NOERR 31

/* Frame for exception_handler (cpu.c, struct exception_frame): r15..rax, vector, error,
 * then the CPU's rip, cs, rflags, rsp, ss. An exception is a failed run unless a test installed
 * a fixup that handled it (exception_handler returns): then the frame, maybe with a new rip,
 * is resumed. */
exc_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov ax, KERNEL_DS
    mov ds, ax
    mov es, ax
    mov rdi, rsp
    mov rbx, rsp                        /* callee-saved: the frame, to resume from */
    and rsp, -16
    call exception_handler
    mov rsp, rbx
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16                         /* vector and error code */
    iretq

    .globl exception_stubs
    .section .rodata
    .balign 8
exception_stubs:
    .irp vec, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exc_\vec
    .endr
    .text

/* SINT2 (vector 0xF3): the C handler counts the interrupt, claims channel event flags and
 * EOIs the local APIC. Caller-saved registers only: the C code preserves the rest. The CPU
 * leaves RSP 16-aligned before its 5-word frame; 9 pushes keep the call 16-aligned. */
    .globl isr_sint
isr_sint:
    push rax
    push rcx
    push rdx
    push rsi
    push rdi
    push r8
    push r9
    push r10
    push r11
    cld
    call sint_handler
    pop r11
    pop r10
    pop r9
    pop r8
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rax
    iretq

/* Other interrupt vectors a test routes to C (cpu_set_interrupt_handler): the stub passes its
 * vector to interrupt_dispatch, which calls the handler and EOIs. Caller-saved registers only,
 * 16-byte aligned call as in isr_sint. */
.macro ISR_VECTOR vec
    .globl isr_vector_\vec
isr_vector_\vec:
    push rax
    push rcx
    push rdx
    push rsi
    push rdi
    push r8
    push r9
    push r10
    push r11
    cld
    mov edi, \vec
    call interrupt_dispatch
    pop r11
    pop r10
    pop r9
    pop r8
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rax
    iretq
.endm
ISR_VECTOR 0xe1
ISR_VECTOR 0xe2
ISR_VECTOR 0xed

/* The APIC's spurious vector: no EOI (the APIC did not set an ISR bit). */
    .globl isr_spurious
isr_spurious:
    iretq

/*
 * u64 run_user(u64 (*fn)(u64), u64 arg, void *user_stack_top)
 *
 * Calls fn(arg) at CPL3 on the given stack and returns its result at CPL0. The user side comes
 * back by executing ud2 at user_return_ud2: exceptions are what this host reliably delivers from
 * CPL3 to the CPL0 IDT (PVM raises #UD for `int 0x80` at CPL3, and its `syscall` reached the
 * MSR_LSTAR entry still at CPL3). The #UD stub recognises that one instruction, drops the exception frame and resumes
 * here from the saved kernel stack. Interrupts taken at CPL3 enter on the TSS RSP0 stack, a
 * separate one, so this kernel stack is never overwritten while the user code runs.
 */
    .globl run_user
run_user:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    pushfq
    mov [rip + kernel_saved_rsp], rsp
    push 0x1b                           /* SS: user data, RPL 3 */
    push rdx                            /* RSP */
    push 0x202                          /* RFLAGS: IF; IOPL 0 (ports come from the TSS bitmap) */
    push 0x23                           /* CS: 64-bit user code, RPL 3 */
    lea rax, [rip + user_entry]
    push rax
    iretq

user_entry:                             /* CPL3: rdi = fn, rsi = arg */
    mov rax, rdi
    mov rdi, rsi
    call rax
user_return_ud2:
    ud2                                 /* back to CPL0 with the result in rax */

user_return:                            /* CPL0 from exc_6, interrupts off (interrupt gate) */
    mov rsp, [rip + kernel_saved_rsp]
    mov cx, KERNEL_DS
    mov ss, cx
    mov ds, cx
    mov es, cx
    popfq                               /* run_user's caller's RFLAGS, IF included */
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret

    .bss
    .balign 8
kernel_saved_rsp:
    .quad 0

    .balign 16
kernel_stack:
    .skip 32768
kernel_stack_top:

    .balign 16
ap_stacks:
    .skip AP_STACKS * AP_STACK_SIZE

    .section .note.GNU-stack, "", @progbits
