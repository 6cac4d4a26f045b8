import VeneerPluginKit

/// Save and load of one counter. Ticks are written as signed offsets from the tick of the save
/// (`t`), after `normalize`, so they are small and mean the same on any host clock.
extension PITCounter {
    /// Bounds of a normalized state: a one-shot count is reduced below N + 65536 + 2 decrements.
    static let maxDecrements: UInt64 = 2 * 0x10000 + 2
    static let maxAhead: Int64 = 0x10001

    /// Layout: mode bits, RW (u8 each), BCD (bool), CR (u16), count written, write flip-flop
    /// (bool each), pending LSB (u8), read flip-flop, count latched (bool each), latched count
    /// (u16), status latched (bool), latched status (u8), NULL COUNT (bool), ticks until the CR
    /// transfer (i64, 0 = none), counting (bool), held CE (u16), load tick offset (i64), N (u32),
    /// OUT before the load, gate-paused (bool each), paused decrements (u64), ticks until a
    /// mode 2/3 reload (i64, 0 = none).
    func save(to state: inout StateWriter, at t: UInt64) {
        state.write(modeBits)
        state.write(access)
        state.write(bcd)
        state.write(countRegister)
        state.write(hasCount)
        state.write(writeHighNext)
        state.write(pendingLowByte)
        state.write(readHighNext)
        state.write(countLatched)
        state.write(latchedCount)
        state.write(statusLatched)
        state.write(latchedStatus)
        state.write(countRegisterPending)
        state.write(transferTick.map { PITClock.distance(from: t, to: $0) } ?? 0)
        state.write(active)
        state.write(heldValue)
        state.write(active ? PITClock.distance(from: t, to: loadTick) : 0)
        state.write(initial)
        state.write(outputBeforeLoad)
        state.write(frozen != nil)
        state.write(frozen ?? 0)
        state.write(reloadTick.map { PITClock.distance(from: t, to: $0) } ?? 0)
    }

    static func load(from state: inout StateReader, gate: Bool, at t: UInt64) throws(StateError) -> PITCounter {
        var c = PITCounter(gate: gate)
        c.modeBits = try state.read()
        c.access = try state.read()
        c.bcd = try state.readBool()
        c.countRegister = try state.read()
        c.hasCount = try state.readBool()
        c.writeHighNext = try state.readBool()
        c.pendingLowByte = try state.read()
        c.readHighNext = try state.readBool()
        c.countLatched = try state.readBool()
        c.latchedCount = try state.read()
        c.statusLatched = try state.readBool()
        c.latchedStatus = try state.read()
        c.countRegisterPending = try state.readBool()
        let transferIn: Int64 = try state.read()
        c.active = try state.readBool()
        c.heldValue = try state.read()
        let loadOffset: Int64 = try state.read()
        c.initial = try state.read()
        c.outputBeforeLoad = try state.readBool()
        let paused = try state.readBool()
        let pausedDecrements: UInt64 = try state.read()
        let reloadIn: Int64 = try state.read()

        guard c.modeBits <= 7 else { throw StateError("mode bits \(c.modeBits) exceed 7") }
        guard (1...3).contains(c.access) else { throw StateError("access mode \(c.access) is not 1, 2 or 3") }
        guard c.access == 3 || (!c.writeHighNext && !c.readHighNext) else {
            throw StateError("byte flip-flop set without LSB-then-MSB access")
        }
        guard c.writeHighNext || c.pendingLowByte == 0 else { throw StateError("pending LSB without a pending MSB") }
        guard c.countLatched || c.latchedCount == 0 else { throw StateError("latched count without a latch") }
        guard c.statusLatched || c.latchedStatus == 0 else { throw StateError("latched status without a latch") }
        guard (1...0x10000).contains(c.initial) else { throw StateError("initial count \(c.initial) is outside 1...65536") }
        guard transferIn == 0 || (c.countRegisterPending && (1...maxAhead).contains(transferIn)) else {
            throw StateError("CR transfer \(transferIn) ticks ahead is out of range")
        }
        c.transferTick = transferIn == 0 ? nil : t &+ UInt64(bitPattern: transferIn)

        guard c.active else {
            guard loadOffset == 0, !paused, pausedDecrements == 0, reloadIn == 0, !c.outputBeforeLoad else {
                throw StateError("an idle counter carries counting state")
            }
            return c
        }
        guard (-Int64(maxDecrements)...1).contains(loadOffset) else {
            throw StateError("load tick offset \(loadOffset) is out of range")
        }
        c.loadTick = t &+ UInt64(bitPattern: loadOffset)
        let gated = c.mode != 1 && c.mode != 5
        // Gate-sensitive modes pause exactly while the gate is low.
        guard !gated || paused == !gate else {
            throw StateError("paused is \(paused) with the gate \(gate ? "high" : "low") in mode \(c.mode)")
        }
        guard paused || pausedDecrements == 0 else { throw StateError("paused decrements without a pause") }
        guard pausedDecrements <= maxDecrements else { throw StateError("paused decrements \(pausedDecrements) out of range") }
        c.frozen = paused ? pausedDecrements : nil
        if reloadIn != 0 {
            guard c.isPeriodic, !paused, loadOffset <= 0, (1...maxAhead).contains(reloadIn) else {
                throw StateError("reload \(reloadIn) ticks ahead is invalid here")
            }
            c.reloadTick = t &+ UInt64(bitPattern: reloadIn)
        }
        return c
    }
}
