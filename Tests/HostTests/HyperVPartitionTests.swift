import Testing
import VMBusProtocol
@testable import VeneerHost

/// The partition interface driven directly (a real KVM VM for interrupt injection, no vCPU):
/// hypercall statuses for hostile input and the synthetic MSRs' rules.
@Suite(.enabled(if: KVMSystem.isAvailable(), "SKIPPED: /dev/kvm is not available on this machine"))
struct HyperVPartitionTests {
    let partition: HyperVPartition
    let memory: GuestMemory

    init() throws {
        let vm = try KVMSystem().createVM()
        try vm.createIRQChip()
        memory = try GuestMemory(map: try MemoryMap.pc(ramBytes: 16 << 20))
        let stop = try StopController()
        partition = HyperVPartition(vm: vm, vpCount: 2, tscHz: 2_000_000_000, memory: memory,
                                    interrupts: InterruptController(vm: vm), events: try EventLoop(stop: stop),
                                    logger: Logger(threshold: .error))
    }

    func post(at address: UInt64, connection: UInt32 = 1, type: UInt32 = 1, size: UInt32 = 8) throws -> UInt64 {
        try? memory.writeValue(connection, at: address)
        try? memory.writeValue(type, at: address + 8)
        try? memory.writeValue(size, at: address + 12)
        return partition.hypercall(vp: 0, control: 0x5C, input: address, output: 0)
    }

    @Test func postMessageRefusesBadInput() throws {
        #expect(try post(at: 0x1004) == 0x4, "not 8-byte aligned")
        #expect(try post(at: 0x1F08) == 0x4, "the 256-byte input crosses a page")
        #expect(try post(at: 0x7FFF_0000) == 0x5, "outside guest RAM")
        #expect(try post(at: 0x2000, size: 241) == 0x5, "payload larger than 240 bytes")
        #expect(try post(at: 0x2000, connection: 77) == 0x12, "unknown connection id")
        #expect(try post(at: 0x2000, type: 2) == 0x5, "not the VMBus message type")
    }

    @Test func otherHypercalls() {
        #expect(partition.hypercall(vp: 0, control: 0x1_005C, input: 0x2000, output: 0) == 0x3, "PostMessage has no fast form")
        #expect(partition.hypercall(vp: 0, control: 0x5D, input: 0, output: 0) == 0x3, "SignalEvent is fast only")
        #expect(partition.hypercall(vp: 0, control: 0x1_005D, input: 0x1234, output: 0) == 0x12)
        #expect(partition.hypercall(vp: 0, control: 0x0099, input: 0, output: 0) == 0x2)
        #expect(partition.unmatchedSignal(connectionID: 0x2001) == 0x12)
    }

    @Test func hypercallPageNeedsTheGuestOSIDFirst() throws {
        typealias M = HyperVInterface.MSR
        #expect(partition.writeMSR(vp: 0, M.hypercall, 0x5000 | 1, guestTSC: { nil }))
        #expect(partition.readMSR(vp: 0, M.hypercall) == 0x5000, "stays disabled while the OS id is 0")
        #expect(try memory.bytes(0x5000, count: 2) == [0, 0])
        #expect(partition.writeMSR(vp: 0, M.guestOSID, 0x8100_0000_0000_0000, guestTSC: { nil }))
        #expect(partition.writeMSR(vp: 0, M.hypercall, 0x5000 | 1, guestTSC: { nil }))
        #expect(partition.readMSR(vp: 0, M.hypercall) == 0x5001)
        #expect(try memory.bytes(0x5000, count: 23) == HypercallPage.code())
        #expect(!partition.writeMSR(vp: 0, M.hypercall, 0x7FFF_0000 | 1, guestTSC: { nil }), "a page outside RAM faults")
    }

    @Test func readOnlyAndUnknownMSRsFault() {
        typealias M = HyperVInterface.MSR
        #expect(partition.readMSR(vp: 1, M.vpIndex) == 1)
        #expect(!partition.writeMSR(vp: 0, M.vpIndex, 5, guestTSC: { nil }))
        #expect(!partition.writeMSR(vp: 0, M.timeRefCount, 5, guestTSC: { nil }))
        #expect(partition.readMSR(vp: 0, 0x4000_00FF) == nil)
        #expect(partition.readMSR(vp: 7, M.scontrol) == nil, "no such VP")
        #expect(partition.readMSR(vp: 0, M.tscFrequency) == 2_000_000_000)
        #expect(partition.readMSR(vp: 0, M.sversion) == 1)
        #expect(partition.readMSR(vp: 0, M.sint0 + 2) == 1 << 16, "SINTs start masked")
        #expect(partition.writeMSR(vp: 0, M.sint0 + 2, 0xF3, guestTSC: { nil }))
        #expect(partition.readMSR(vp: 0, M.sint0 + 2) == 0xF3)
    }

    @Test func referenceTSCPageScalesTheGuestTSCTo100ns() throws {
        typealias M = HyperVInterface.MSR
        #expect(partition.writeMSR(vp: 0, M.referenceTSC, 0x6000 | 1, guestTSC: { 4_000_000_000 }))
        #expect(try memory.readValue(0x6000, as: UInt32.self) == 1, "sequence published")
        let scale = try memory.readValue(0x6008, as: UInt64.self)
        #expect(scale == UInt64((UInt128(10_000_000) << 64) / 2_000_000_000))
        let offset = Int64(bitPattern: try memory.readValue(0x6010, as: UInt64.self))
        let now = Int64((UInt128(4_000_000_000) * UInt128(scale)) >> 64) + offset
        #expect(abs(now - Int64(partition.referenceTime())) < 10_000, "agrees with TIME_REF_COUNT within 1 ms")
    }

    @Test func synICQueuesMessagesWhileTheSlotIsBusy() throws {
        typealias M = HyperVInterface.MSR
        #expect(partition.writeMSR(vp: 0, M.simp, 0x8000 | 1, guestTSC: { nil }))
        #expect(partition.writeMSR(vp: 0, M.scontrol, 1, guestTSC: { nil }))
        partition.synic.post(vp: 0, sint: 2, messageType: 1, payload: [1, 2, 3])
        partition.synic.post(vp: 0, sint: 2, messageType: 1, payload: [4, 5, 6])
        let slot: UInt64 = 0x8000 + 2 * 256
        #expect(try memory.readValue(slot, as: UInt32.self) == 1)
        #expect(try memory.bytes(slot + 16, count: 3) == [1, 2, 3])
        #expect(try memory.bytes(slot + 5, count: 1) == [1], "message pending set: the second one waits")
        #expect(partition.synic.pendingMessageCount(vp: 0, sint: 2) == 1)
        try memory.writeValue(UInt32(0), at: slot)                   // the guest frees the slot ...
        #expect(partition.writeMSR(vp: 0, M.eom, 0, guestTSC: { nil }))  // ... and writes EOM
        #expect(try memory.bytes(slot + 16, count: 3) == [4, 5, 6])
        #expect(partition.synic.pendingMessageCount(vp: 0, sint: 2) == 0)
    }

    @Test func signalSetsTheEventFlagOnce() throws {
        typealias M = HyperVInterface.MSR
        #expect(partition.writeMSR(vp: 0, M.siefp, 0x9000 | 1, guestTSC: { nil }))
        #expect(partition.writeMSR(vp: 0, M.scontrol, 1, guestTSC: { nil }))
        partition.synic.signal(vp: 0, sint: 2, eventFlag: 37)
        #expect(try memory.readValue(0x9000 + 2 * 256 + 4, as: UInt32.self) == 1 << 5)
        partition.synic.signal(vp: 0, sint: 2, eventFlag: 5000)           // out of range: ignored
        partition.synic.signal(vp: 9, sint: 2, eventFlag: 1)              // no such VP: ignored
    }
}
