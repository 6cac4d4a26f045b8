# start-marker.s - the guest bench/manage/run times: its first I/O writes "!" to COM1, so the
# moment that byte reaches the serial output (a FIFO the bench reads) is the moment the guest
# began executing, give or take the two register loads before it. Then it sleeps forever with
# interrupts off (the VM stays Running, its vCPU blocked in HLT, until it is stopped).
#
# Boot: flat image, mode "real", loaded and entered at 0x7c00 (see bench/manage/marker.toml).

    .code16
    .intel_syntax noprefix

    .globl _start
_start:
    mov dx, 0x3f8                   # COM1's transmit register
    mov al, '!'
    out dx, al                      # the marker
1:
    cli
    hlt
    jmp 1b
