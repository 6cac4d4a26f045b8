import Testing
import VMBusProtocol
@testable import VeneerHost

/// STIMER0-3 driven through their MSRs with a hand-moved guest TSC and alarms fired by hand:
/// one-shot and periodic, auto-enable, message mode through the SynIC slot (busy slot and EOM)
/// and the rules for disabling. 2 GHz TSC: 200 TSC ticks are one 100 ns reference tick.
@Suite(.enabled(if: KVMSystem.isAvailable(), "SKIPPED: /dev/kvm is not available on this machine"))
struct SyntheticTimerTests {
    typealias M = HyperVInterface.MSR
    let partition: HyperVPartition
    let memory: GuestMemory
    let tsc = ManualTSC(1_000_000_000)
    let alarms = RecordedAlarms()

    static let enable: UInt64 = 1, periodic: UInt64 = 1 << 1, autoEnable: UInt64 = 1 << 3, direct: UInt64 = 1 << 12
    static func sint(_ n: UInt64) -> UInt64 { n << 16 }
    static let simp: UInt64 = 0x8000
    static func slot(_ sint: UInt64) -> UInt64 { simp + sint * 256 }

    init() throws {
        let vm = try KVMSystem().createVM()
        try vm.createIRQChip()
        memory = try GuestMemory(map: try MemoryMap.pc(ramBytes: 16 << 20))
        let tsc = self.tsc
        partition = try HyperVPartition(vm: vm, vpCount: 2, tscHz: 2_000_000_000, estimatedGuestTSC: { tsc.value },
                                        memory: memory, interrupts: InterruptController(vm: vm),
                                        events: try EventLoop(stop: try StopController()), alarms: alarms,
                                        logger: Logger(threshold: .error))
        for vp: UInt32 in 0..<2 {
            #expect(partition.writeMSR(vp: vp, M.simp, Self.simp + UInt64(vp) * 0x1000 | 1))
            #expect(partition.writeMSR(vp: vp, M.sint0 + 3, 0x40))
            #expect(partition.writeMSR(vp: vp, M.scontrol, 1))
        }
    }

    var now: UInt64 { partition.referenceTime() }
    func advance(ticks: UInt64) { tsc.advance(ticks * 200) }

    func message(vp: UInt64 = 0, sint: UInt64 = 3) throws -> (type: UInt32, body: TimerExpiredMessage)? {
        let slot = Self.slot(sint) + vp * 0x1000
        let type = try memory.readValue(slot, as: UInt32.self)
        guard type != 0 else { return nil }
        let size = Int(try memory.bytes(slot + 4, count: 1)[0])
        return (type, try TimerExpiredMessage.decode(try memory.bytes(slot + 16, count: size)))
    }

    func freeSlotAndEOM(vp: UInt32 = 0, sint: UInt64 = 3) throws {
        try memory.writeValue(UInt32(0), at: Self.slot(sint) + UInt64(vp) * 0x1000)
        #expect(partition.writeMSR(vp: vp, M.eom, 0))
    }

    @Test func oneShotMessageArrivesAtItsTimeNotBefore() throws {
        #expect(partition.writeMSR(vp: 0, M.stimer0Config, Self.autoEnable | Self.sint(3)))
        #expect(partition.readMSR(vp: 0, M.stimer0Config) == Self.autoEnable | Self.sint(3), "not enabled by the config alone")
        let deadline = now + 1000
        #expect(partition.writeMSR(vp: 0, M.stimer0Count, deadline))
        #expect(partition.readMSR(vp: 0, M.stimer0Config)! & Self.enable != 0, "auto-enabled by the count")
        #expect(alarms.take(0) == 1000)
        advance(ticks: 600)
        partition.timers.fire(slot: 0)                     // the host woke early
        #expect(try message() == nil)
        #expect(alarms.take(0) == 400, "re-armed for the rest")
        advance(ticks: 400)
        partition.timers.fire(slot: 0)
        let m = try #require(try message())
        #expect(m.type == 0x8000_0010)
        #expect(m.body.timerIndex == 0 && m.body.expirationTime == deadline && m.body.deliveryTime >= deadline)
        #expect(partition.readMSR(vp: 0, M.stimer0Config)! & Self.enable == 0, "a delivered one-shot disables itself")
        #expect(partition.readMSR(vp: 0, M.stimer0Count) == deadline)
        partition.timers.fire(slot: 0)                      // a stale wake-up does nothing
        #expect(partition.synic.pendingMessageCount(vp: 0, sint: 3) == 0)
    }

    @Test func aOneShotInThePastExpiresAtOnce() throws {
        advance(ticks: 5000)
        #expect(partition.writeMSR(vp: 1, M.stimer0Config + 2, Self.enable | Self.sint(3)))   // STIMER1 of VP 1
        #expect(try message(vp: 1) == nil, "count 0: nothing to do")
        #expect(partition.writeMSR(vp: 1, M.stimer0Count + 2, 10))      // still enabled: starts, already past
        let m = try #require(try message(vp: 1))
        #expect(m.body.timerIndex == 1 && m.body.expirationTime == 10 && m.body.deliveryTime >= 5000)
        #expect(try message(vp: 0) == nil, "only VP 1's slot")
        #expect(partition.readMSR(vp: 1, M.stimer0Config + 2)! & Self.enable == 0, "done")
        try freeSlotAndEOM(vp: 1)
        #expect(partition.writeMSR(vp: 1, M.stimer0Config + 2, Self.enable | Self.sint(3)))
        #expect(try message(vp: 1)?.body.expirationTime == 10, "enabling again with a past count expires again")
    }

    @Test func aBusySlotKeepsTheExpirationUntilEOM() throws {
        try memory.writeValue(UInt32(1), at: Self.slot(3))              // a VMBus message occupies the slot
        #expect(partition.writeMSR(vp: 0, M.stimer0Config + 4, Self.enable | Self.sint(3)))
        #expect(partition.writeMSR(vp: 0, M.stimer0Count + 4, now + 10))
        advance(ticks: 10)
        partition.timers.fire(slot: 2)
        #expect(partition.synic.pendingMessageCount(vp: 0, sint: 3) == 1)
        #expect(try memory.bytes(Self.slot(3) + 5, count: 1) == [1], "message pending set")
        #expect(partition.readMSR(vp: 0, M.stimer0Config + 4)! & Self.enable != 0, "enabled until delivered")
        advance(ticks: 77)
        try freeSlotAndEOM()
        let m = try #require(try message())
        #expect(m.body.timerIndex == 2 && m.body.deliveryTime >= m.body.expirationTime + 77, "delivery time is when it reached the slot")
        #expect(partition.readMSR(vp: 0, M.stimer0Config + 4)! & Self.enable == 0)
    }

    @Test func reconfiguringWithdrawsAWaitingExpiration() throws {
        try memory.writeValue(UInt32(1), at: Self.slot(3))
        #expect(partition.writeMSR(vp: 0, M.stimer0Config, Self.enable | Self.sint(3)))
        advance(ticks: 2)
        #expect(partition.writeMSR(vp: 0, M.stimer0Count, 1))          // in the past: expires, waits for the slot
        #expect(partition.synic.pendingMessageCount(vp: 0, sint: 3) == 1)
        #expect(partition.writeMSR(vp: 0, M.stimer0Count, 0))          // count 0 disables and withdraws
        #expect(partition.synic.pendingMessageCount(vp: 0, sint: 3) == 0)
        #expect(partition.readMSR(vp: 0, M.stimer0Config)! & Self.enable == 0)
    }

    @Test func periodicTicksCoalesceAndDoNotPileUp() throws {
        let start = now
        #expect(partition.writeMSR(vp: 0, M.stimer0Count + 6, 500))
        #expect(partition.writeMSR(vp: 0, M.stimer0Config + 6, Self.enable | Self.periodic | Self.sint(3)))
        #expect(alarms.take(3) == 500)
        advance(ticks: 1700)                                            // three periods late
        partition.timers.fire(slot: 3)
        let first = try #require(try message())
        #expect(first.body.timerIndex == 3 && first.body.expirationTime == start + 500)
        #expect(alarms.take(3) == 300, "next tick on the period grid: start + 2000")
        advance(ticks: 300)
        partition.timers.fire(slot: 3)                                  // slot still busy
        #expect(partition.synic.pendingMessageCount(vp: 0, sint: 3) == 1)
        advance(ticks: 500)
        partition.timers.fire(slot: 3)                                  // previous still waiting: dropped
        #expect(partition.synic.pendingMessageCount(vp: 0, sint: 3) == 1)
        try freeSlotAndEOM()
        #expect(try message()?.body.expirationTime == start + 2000)
        #expect(partition.readMSR(vp: 0, M.stimer0Config + 6)! & Self.enable != 0, "periodic stays enabled")
        #expect(partition.writeMSR(vp: 0, M.stimer0Config + 6, 0))
        #expect(alarms.ticks(3) == nil, "disabling cancels the alarm")
    }

    @Test func messageModeNeedsASINTAndDirectModeSendsNoMessage() throws {
        #expect(partition.writeMSR(vp: 0, M.stimer0Config, Self.enable | Self.sint(0)))
        #expect(partition.writeMSR(vp: 0, M.stimer0Count, now + 5))
        #expect(partition.readMSR(vp: 0, M.stimer0Config)! & Self.enable == 0, "message mode on SINT 0 stays off")
        let directConfig = Self.enable | Self.direct | 0xED << 4
        #expect(partition.writeMSR(vp: 0, M.stimer0Config, directConfig))
        #expect(partition.readMSR(vp: 0, M.stimer0Config) == directConfig)
        advance(ticks: 5)
        partition.timers.fire(slot: 0)
        #expect(try message() == nil && partition.synic.pendingMessageCount(vp: 0, sint: 0) == 0)
        #expect(partition.readMSR(vp: 0, M.stimer0Config)! & Self.enable == 0, "a fired direct one-shot disables itself")
        #expect(partition.writeMSR(vp: 0, M.stimer0Config, 0xFFFF_FFFF_FFFF_FFFE))
        #expect(partition.readMSR(vp: 0, M.stimer0Config) == 0x000F_1FFE, "reserved bits read as 0")
        #expect(partition.readMSR(vp: 2, M.stimer0Config) == nil, "no VP 2")
        #expect(partition.readMSR(vp: 0, 0x4000_00B8) == nil, "no STIMER4")
    }
}
