# triple-fault.bin - deliberately triple-faults, so the VMM sees
# KVM_EXIT_SHUTDOWN and must report it (not hang, not crash).
#
# Boot: flat image, mode "long", loaded and entered at 0x100000.
#
# With an IDT of limit 0 every vector is out of bounds: the #UD from ud2
# cannot be delivered (#GP), neither can that #GP (#DF), nor the #DF:
# shutdown. ud2 is used because it is emulated on every KVM flavour tried,
# including the PVM host this was written on (int3 is not emulated there).
# If execution ever continues past ud2 the guest exits with status 1.

    .intel_syntax noprefix
    .code64

    .section .text.head, "ax"
    .globl _start
_start:
    cld
    lea rsp, [rip + stack_top]
    lea rsi, [rip + msg_start]
    call uart_puts
    lidt [rip + empty_idtr]
    ud2
    lea rsi, [rip + msg_survived]
    call uart_puts
    mov al, 1
    jmp debug_exit

    .include "lib64.inc"

    .section .rodata
    .balign 16
empty_idtr:
    .word 0                         # limit 0: no vector fits
    .quad 0
msg_start:    .asciz "triple-fault: loading an empty IDT and executing ud2\n"
msg_survived: .asciz "triple-fault: FAILED execution continued after ud2\n"

    .section .bss
    .balign 16
    .skip 1024
stack_top:
