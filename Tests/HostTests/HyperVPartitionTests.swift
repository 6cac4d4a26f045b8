import CKVM
import Synchronization
import Testing
import VMBusProtocol
@testable import VeneerHost

/// The partition interface driven directly (a real KVM VM for interrupt injection, no vCPU):
/// hypercall statuses for hostile input and the synthetic MSRs' rules.
@Suite(.enabled(if: KVMSystem.isAvailable(), "SKIPPED: /dev/kvm is not available on this machine"))
struct HyperVPartitionTests {
    let partition: HyperVPartition
    let memory: GuestMemory
    /// The guest TSC as the host-side estimate sees it; starts at 1e9 (reference time 0 there).
    let tsc = ManualTSC(1_000_000_000)
    let alarms = RecordedAlarms()

    init() throws {
        let vm = try KVMSystem().createVM()
        try vm.createIRQChip()
        memory = try GuestMemory(map: try MemoryMap.pc(ramBytes: 16 << 20))
        let stop = try StopController()
        let tsc = self.tsc
        partition = try HyperVPartition(vm: vm, vpCount: 2, tscHz: 2_000_000_000, estimatedGuestTSC: { tsc.value },
                                        memory: memory, interrupts: InterruptController(vm: vm),
                                        events: try EventLoop(stop: stop), alarms: alarms, logger: Logger(threshold: .error))
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
        #expect(partition.writeMSR(vp: 0, M.hypercall, 0x5000 | 1))
        #expect(partition.readMSR(vp: 0, M.hypercall) == 0x5000, "stays disabled while the OS id is 0")
        #expect(try memory.bytes(0x5000, count: 2) == [0, 0])
        #expect(partition.writeMSR(vp: 0, M.guestOSID, 0x8100_0000_0000_0000))
        #expect(partition.writeMSR(vp: 0, M.hypercall, 0x5000 | 1))
        #expect(partition.readMSR(vp: 0, M.hypercall) == 0x5001)
        #expect(try memory.bytes(0x5000, count: 23) == HypercallPage.code())
        #expect(!partition.writeMSR(vp: 0, M.hypercall, 0x7FFF_0000 | 1), "a page outside RAM faults")
    }

    @Test func readOnlyAndUnknownMSRsFault() {
        typealias M = HyperVInterface.MSR
        #expect(partition.readMSR(vp: 1, M.vpIndex) == 1)
        #expect(!partition.writeMSR(vp: 0, M.vpIndex, 5))
        #expect(!partition.writeMSR(vp: 0, M.timeRefCount, 5))
        #expect(partition.readMSR(vp: 0, 0x4000_00FF) == nil)
        #expect(partition.readMSR(vp: 7, M.scontrol) == nil, "no such VP")
        #expect(partition.readMSR(vp: 0, M.tscFrequency) == 2_000_000_000)
        #expect(partition.readMSR(vp: 0, M.sversion) == 1)
        #expect(partition.readMSR(vp: 0, M.sint0 + 2) == 1 << 16, "SINTs start masked")
        #expect(partition.writeMSR(vp: 0, M.sint0 + 2, 0xF3))
        #expect(partition.readMSR(vp: 0, M.sint0 + 2) == 0xF3)
    }

    @Test func referenceTSCPageScalesTheGuestTSCTo100ns() throws {
        typealias M = HyperVInterface.MSR
        #expect(partition.writeMSR(vp: 0, M.referenceTSC, 0x6000 | 1))
        #expect(try memory.readValue(0x6000, as: UInt32.self) == 1, "sequence published")
        let scale = try memory.readValue(0x6008, as: UInt64.self)
        #expect(scale == UInt64((UInt128(10_000_000) << 64) / 2_000_000_000))
        let offset = Int64(bitPattern: try memory.readValue(0x6010, as: UInt64.self))
        let page = GuestPageClock(scale: scale, offset: offset)
        #expect(page.time(atTSC: 1_000_000_000) == 0, "reference time starts at 0 with the partition")
        #expect(page.time(atTSC: 3_000_000_000) == 10_000_000, "2e9 ticks at 2 GHz are one second")
    }

    /// The page (evaluated the way the guest does, from the bytes in guest memory) and the
    /// TIME_REF_COUNT MSR give the same time for every TSC value, so an MSR read taken after a
    /// page read is never behind it.
    @Test func pageAndTimeRefCountAgreeOverMillionsOfReads() throws {
        typealias M = HyperVInterface.MSR
        #expect(partition.writeMSR(vp: 0, M.referenceTSC, 0x6000 | 1))
        let page = GuestPageClock(scale: try memory.readValue(0x6008, as: UInt64.self),
                                  offset: Int64(bitPattern: try memory.readValue(0x6010, as: UInt64.self)))
        var generator = SeededGenerator(seed: 0x7153_C0DE)
        var tsc: UInt64 = 1_000_000_000
        var lastPage: UInt64 = 0
        for i in 0..<2_000_000 {
            // Mostly small steps (back-to-back reads), sometimes large jumps (a long run).
            tsc &+= i % 1000 == 0 ? generator.next() % (1 << 40) : generator.next() % 97
            let pageRead = page.time(atTSC: tsc)
            let later = tsc &+ generator.next() % 5_000
            let msr = try #require(partition.readMSR(vp: UInt32(i & 1), M.timeRefCount, guestTSC: { later }))
            if msr < pageRead || (i % 100_000 == 0 && page.time(atTSC: later) != msr) {
                Issue.record("TSC \(tsc): page \(pageRead), MSR at TSC \(later) \(msr)")
                return
            }
            if msr != page.time(atTSC: later) { Issue.record("MSR and page disagree at TSC \(later)"); return }
            if pageRead < lastPage { Issue.record("page time went back at TSC \(tsc)"); return }
            lastPage = pageRead
        }
    }

    @Test func reenablingPublishesAFreshSequence() throws {
        typealias M = HyperVInterface.MSR
        #expect(partition.writeMSR(vp: 0, M.referenceTSC, 0x6000 | 1))
        let scale = try memory.readValue(0x6008, as: UInt64.self)
        #expect(partition.writeMSR(vp: 1, M.referenceTSC, 0x7000 | 1), "moved to another page")
        #expect(try memory.readValue(0x7000, as: UInt32.self) == 2)
        #expect(try memory.readValue(0x7008, as: UInt64.self) == scale, "one scale for the partition")
        #expect(partition.writeMSR(vp: 0, M.referenceTSC, 0x7000))
        #expect(partition.readMSR(vp: 0, M.referenceTSC) == 0x7000)
        #expect(try memory.readValue(0x7000, as: UInt32.self) == 2, "disabling leaves the page to the guest")
        #expect(partition.writeMSR(vp: 0, M.referenceTSC, 0x7000 | 1))
        #expect(try memory.readValue(0x7000, as: UInt32.self) == 3)
        #expect(!partition.writeMSR(vp: 0, M.referenceTSC, 0x7FFF_0000 | 1), "a page outside RAM faults")
        #expect(ReferenceTSCPage.sequence(after: 0xFFFF_FFFD) == 0xFFFF_FFFE)
        #expect(ReferenceTSCPage.sequence(after: 0xFFFF_FFFE) == 1, "0xFFFFFFFF is never published")
        #expect(ReferenceTSCPage.sequence(after: 0xFFFF_FFFF) == 1, "nor is 0")
    }

    @Test func aTSCFrequencyTooLowForTheScaleIsRefused() {
        #expect(ReferenceTimeScale(tscHz: 10_000_000, zeroAtTSC: 0) == nil)
        #expect(ReferenceTimeScale(tscHz: 10_000_001, zeroAtTSC: 0) != nil)
    }

    @Test func cpuidOffersTimersAVersionAndInvariantTSCOnlyWhenTrue() throws {
        let plain = HyperVCPUID.leaves(vcpuCount: 2)
        let version = try #require(plain.first { $0.function == 0x4000_0002 })
        #expect(version.eax == 20348 && version.ebx == 10 << 16, "10.0.20348")
        let features = try #require(plain.first { $0.function == 0x4000_0003 })
        #expect(features.eax & (1 << 3) != 0, "AccessSyntheticTimerRegs")
        #expect(features.edx & (1 << 19) != 0, "direct-mode timers")
        #expect(features.eax & (1 << 15) == 0, "no invariant TSC unless the host has it")
        let invariant = try #require(HyperVCPUID.leaves(vcpuCount: 2, features: HyperVFeatures(invariantTSC: true))
            .first { $0.function == 0x4000_0003 })
        #expect(invariant.eax & (1 << 15) != 0)

        var power = kvm_cpuid_entry2()
        power.function = 0x8000_0007
        power.edx = 1 << 8
        let hidden = HyperVCPUID.apply(to: [power], vcpuCount: 1).first { $0.function == 0x8000_0007 }
        #expect(hidden?.edx == 0, "leaf 0x80000007 does not claim invariant TSC when the partition does not")
        let kept = HyperVCPUID.apply(to: [power], vcpuCount: 1, features: HyperVFeatures(invariantTSC: true))
            .first { $0.function == 0x8000_0007 }
        #expect(kept?.edx == 1 << 8)
    }

    @Test func invariantTSCControlExistsOnlyWhenOffered() throws {
        let control = HyperVInterface.MSR.tscInvariantControl
        #expect(partition.readMSR(vp: 0, control) == nil)
        #expect(!partition.writeMSR(vp: 0, control, 1))
        let vm = try KVMSystem().createVM()
        try vm.createIRQChip()
        let offered = try HyperVPartition(vm: vm, vpCount: 1, tscHz: 2_000_000_000, estimatedGuestTSC: { 0 },
                                          features: HyperVFeatures(invariantTSC: true), memory: memory,
                                          interrupts: InterruptController(vm: vm), events: try EventLoop(stop: try StopController()),
                                          alarms: alarms, logger: Logger(threshold: .error))
        #expect(offered.readMSR(vp: 0, control) == 0)
        #expect(!offered.writeMSR(vp: 0, control, 2), "reserved bits fault")
        #expect(offered.writeMSR(vp: 0, control, 1))
        #expect(offered.readMSR(vp: 0, control) == 1)
        #expect(!offered.writeMSR(vp: 0, control, 0), "cannot be cleared once set")
    }

    @Test func synICQueuesMessagesWhileTheSlotIsBusy() throws {
        typealias M = HyperVInterface.MSR
        #expect(partition.writeMSR(vp: 0, M.simp, 0x8000 | 1))
        #expect(partition.writeMSR(vp: 0, M.scontrol, 1))
        partition.synic.post(vp: 0, sint: 2, messageType: 1, payload: [1, 2, 3])
        partition.synic.post(vp: 0, sint: 2, messageType: 1, payload: [4, 5, 6])
        let slot: UInt64 = 0x8000 + 2 * 256
        #expect(try memory.readValue(slot, as: UInt32.self) == 1)
        #expect(try memory.bytes(slot + 16, count: 3) == [1, 2, 3])
        #expect(try memory.bytes(slot + 5, count: 1) == [1], "message pending set: the second one waits")
        #expect(partition.synic.pendingMessageCount(vp: 0, sint: 2) == 1)
        try memory.writeValue(UInt32(0), at: slot)                   // the guest frees the slot ...
        #expect(partition.writeMSR(vp: 0, M.eom, 0))  // ... and writes EOM
        #expect(try memory.bytes(slot + 16, count: 3) == [4, 5, 6])
        #expect(partition.synic.pendingMessageCount(vp: 0, sint: 2) == 0)
    }

    @Test func signalSetsTheEventFlagOnce() throws {
        typealias M = HyperVInterface.MSR
        #expect(partition.writeMSR(vp: 0, M.siefp, 0x9000 | 1))
        #expect(partition.writeMSR(vp: 0, M.scontrol, 1))
        partition.synic.signal(vp: 0, sint: 2, eventFlag: 37)
        #expect(try memory.readValue(0x9000 + 2 * 256 + 4, as: UInt32.self) == 1 << 5)
        partition.synic.signal(vp: 0, sint: 2, eventFlag: 5000)           // out of range: ignored
        partition.synic.signal(vp: 9, sint: 2, eventFlag: 1)              // no such VP: ignored
    }
}

/// The guest's side of the reference TSC page: ((tsc * scale) >> 64) + offset.
struct GuestPageClock {
    let scale: UInt64
    let offset: Int64
    func time(atTSC tsc: UInt64) -> UInt64 {
        UInt64(truncatingIfNeeded: (UInt128(tsc) * UInt128(scale)) >> 64) &+ UInt64(bitPattern: offset)
    }
}

final class ManualTSC: Sendable {
    private let counter: Mutex<UInt64>
    init(_ start: UInt64) { counter = Mutex(start) }
    var value: UInt64 { counter.withLock { $0 } }
    func advance(_ ticks: UInt64) { counter.withLock { $0 &+= ticks } }
}

/// Synthetic-timer alarms kept for the test to look at and fire by hand.
final class RecordedAlarms: SyntheticTimerAlarms {
    private let armed = Mutex<[Int: UInt64]>([:])
    func arm(slot: Int, afterTicks ticks: UInt64) { armed.withLock { $0[slot] = ticks } }
    func cancel(slot: Int) { armed.withLock { $0[slot] = nil } }
    func ticks(_ slot: Int) -> UInt64? { armed.withLock { $0[slot] } }
    func take(_ slot: Int) -> UInt64? { armed.withLock { $0.removeValue(forKey: slot) } }
}
