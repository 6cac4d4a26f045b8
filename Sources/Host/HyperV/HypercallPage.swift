/// The code Veneer writes into the guest's hypercall page.
///
/// The guest calls it with RCX = control, RDX = input, R8 = output (Linux's convention) and gets
/// the status in RAX; RCX and RDX are clobbered, as the hypercall ABI allows. A fast HvSignalEvent
/// (control exactly 0x1005D in its low 32 bits) writes the connection id to `signalPort`, where an
/// ioeventfd per open channel takes it in the kernel and RCX stays 0 (success); for an id with no
/// ioeventfd the write exits to user space and the VMM leaves the status in RCX. Every other
/// hypercall exits through `out hypercallPort, al` with its registers intact.
enum HypercallPage {
    static func code(hypercallPort: UInt16 = HyperVInterface.hypercallPort,
                     signalPort: UInt16 = HyperVInterface.signalPort) -> [UInt8] {
        [
            0x81, 0xF9, 0x5D, 0x00, 0x01, 0x00,                 //  0: cmp ecx, 0x1005D
            0x75, 0x0C,                                         //  6: jne slow (20)
            0x89, 0xD0,                                         //  8: mov eax, edx      ; connection id
            0x31, 0xC9,                                         // 10: xor ecx, ecx      ; status if absorbed
            0x66, 0xBA, UInt8(signalPort & 0xFF), UInt8(signalPort >> 8), // 12: mov dx, signalPort
            0xEF,                                               // 16: out dx, eax
            0x89, 0xC8,                                         // 17: mov eax, ecx
            0xC3,                                               // 19: ret
            0xE6, UInt8(truncatingIfNeeded: hypercallPort),     // 20: slow: out hypercallPort, al
            0xC3,                                               // 22: ret
        ]
    }
}
