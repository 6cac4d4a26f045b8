import Synchronization
import VeneerHost
import VeneerPluginABI
#if canImport(Glibc)
import Glibc
#endif

/// The harness's `DeviceHost`: fake guest RAM (a real `GuestMemory`, so bounds checks are the
/// VMM's own), an interrupt recorder, a manual clock with timers, fd watches polled on demand,
/// a posted-work queue and a record of stop requests and log lines.
public final class FakeHost: DeviceHost, @unchecked Sendable {
    // @unchecked: all mutable state lives in `state`, behind a Mutex.

    public struct Region: Sendable, Equatable {
        public enum Kind: Sendable { case pio, mmio }
        public var id: UInt32
        public var kind: Kind
        public var base: UInt64
        public var length: UInt64
    }

    public struct IRQEvent: Sendable, Equatable {
        public var line: UInt32
        public var level: Bool
        public var time: UInt64
    }

    public struct StopRequest: Sendable, Equatable {
        public var reason: UInt32
        public var exitStatus: Int32
    }

    struct Timer {
        var deadline: UInt64
        var period: UInt64
    }

    struct State {
        var regions: [Region] = []
        var irqLevels: [UInt32: Bool] = [:]
        var irqEvents: [IRQEvent] = []
        var msis: [(UInt64, UInt32)] = []
        var now: UInt64 = 1_000_000_000
        var timers: [UInt64: Timer] = [:]
        var watches: [Int32: (events: UInt32, token: UInt64)] = [:]
        var work: [UInt64] = []
        var stops: [StopRequest] = []
        var logs: [(UInt32, String)] = []
        var errors: [String] = []
    }

    let state = Mutex(State())
    public let memory: GuestMemory
    /// Set by the harness once the device exists, so set_error reaches its failure reports.
    weak var device: PluginDevice?

    init(memory: GuestMemory) { self.memory = memory }

    public var regions: [Region] { state.withLock { $0.regions } }
    public var irqLevels: [UInt32: Bool] { state.withLock { $0.irqLevels } }
    public var irqEvents: [IRQEvent] { state.withLock { $0.irqEvents } }
    public var msis: [(address: UInt64, data: UInt32)] { state.withLock { $0.msis.map { (address: $0.0, data: $0.1) } } }
    public var stopRequests: [StopRequest] { state.withLock { $0.stops } }
    public var logLines: [String] { state.withLock { $0.logs.map(\.1) } }
    public var errors: [String] { state.withLock { $0.errors } }
    public var now: UInt64 { state.withLock { $0.now } }
    public var armedTimers: [UInt64: (deadline: UInt64, period: UInt64)] {
        state.withLock { $0.timers.mapValues { (deadline: $0.deadline, period: $0.period) } }
    }
    public var watchedFDs: [Int32] { state.withLock { Array($0.watches.keys).sorted() } }

    public func clearIRQEvents() { state.withLock { $0.irqEvents.removeAll() } }

    // MARK: DeviceHost

    public func log(level: UInt32, message: String) { state.withLock { $0.logs.append((level, message)) } }

    public func setError(_ message: String) {
        state.withLock { $0.errors.append(message) }
        device?.noteError(message)
    }

    private func register(_ region: Region) -> veneer_status {
        state.withLock { s in
            if s.regions.contains(where: { $0.id == region.id }) { return .invalid }
            let clash = s.regions.contains {
                $0.kind == region.kind && $0.base < region.base + region.length && region.base < $0.base + $0.length
            }
            if clash { return .busy }
            s.regions.append(region)
            return .ok
        }
    }

    public func registerPortIO(region: UInt32, port: UInt16, length: UInt32) -> veneer_status {
        guard length > 0, UInt32(port) + length <= 0x10000 else { return .invalid }
        return register(Region(id: region, kind: .pio, base: UInt64(port), length: UInt64(length)))
    }

    public func registerMMIO(region: UInt32, address: UInt64, length: UInt64) -> veneer_status {
        guard length > 0, address <= UInt64.max - length else { return .invalid }
        if memory.map.regions.contains(where: { $0.kind != .mmio && $0.start < address + length && address < $0.end }) {
            return .busy
        }
        return register(Region(id: region, kind: .mmio, base: address, length: length))
    }

    public func unregisterRegion(_ region: UInt32) -> veneer_status {
        state.withLock { s in
            guard let i = s.regions.firstIndex(where: { $0.id == region }) else { return .invalid }
            s.regions.remove(at: i)
            return .ok
        }
    }

    public func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> veneer_status {
        do { try memory.read(address, into: buffer); return .ok } catch { return .outOfRange }
    }

    public func writeGuest(_ address: UInt64, from buffer: UnsafeRawBufferPointer) -> veneer_status {
        do { try memory.write(address, from: buffer); return .ok } catch { return .outOfRange }
    }

    public func mapGuest(_ address: UInt64, length: UInt64, writable: Bool) -> UnsafeMutableRawPointer? {
        memory.pointer(address, length: length, writable: writable)
    }

    public func setIRQ(line: UInt32, level: Bool) -> veneer_status {
        state.withLock { s in
            s.irqLevels[line] = level
            s.irqEvents.append(IRQEvent(line: line, level: level, time: s.now))
        }
        return .ok
    }

    public func sendMSI(address: UInt64, data: UInt32) -> veneer_status {
        state.withLock { $0.msis.append((address, data)) }
        return .ok
    }

    public func clockNanoseconds() -> UInt64 { state.withLock { $0.now } }

    public func armTimer(token: UInt64, deadline: UInt64, period: UInt64) -> veneer_status {
        state.withLock { $0.timers[token] = Timer(deadline: deadline, period: period) }
        return .ok
    }

    public func cancelTimer(token: UInt64) -> veneer_status {
        state.withLock { _ = $0.timers.removeValue(forKey: token) }
        return .ok
    }

    public func watch(fd: Int32, events: UInt32, token: UInt64) -> veneer_status {
        guard fd >= 0 else { return .invalid }
        state.withLock { $0.watches[fd] = (events, token) }
        return .ok
    }

    public func unwatch(fd: Int32) -> veneer_status {
        state.withLock { $0.watches.removeValue(forKey: fd) } == nil ? .invalid : .ok
    }

    public func postWork(token: UInt64) -> veneer_status {
        state.withLock { $0.work.append(token) }
        return .ok
    }

    public func requestStop(reason: UInt32, exitStatus: Int32) {
        state.withLock { $0.stops.append(StopRequest(reason: reason, exitStatus: exitStatus)) }
    }

    // MARK: driving the fakes (used by PluginHarness)

    /// Moves the clock to `target`, returning due timers in deadline order one at a time so that a
    /// callback may re-arm or cancel timers before the next is chosen.
    func nextDueTimer(upTo target: UInt64) -> UInt64? {
        state.withLock { s in
            guard let (token, timer) = s.timers.filter({ $0.value.deadline <= target })
                .min(by: { ($0.value.deadline, $0.key) < ($1.value.deadline, $1.key) })
            else {
                s.now = max(s.now, target)
                return nil
            }
            s.now = max(s.now, timer.deadline)
            if timer.period > 0 {
                s.timers[token] = Timer(deadline: timer.deadline + timer.period, period: timer.period)
            } else {
                s.timers.removeValue(forKey: token)
            }
            return token
        }
    }

    /// Moves the clock to `target` without firing anything on the way, as on a host that stalled.
    func jumpClock(to target: UInt64) { state.withLock { $0.now = max($0.now, target) } }

    /// The earliest timer whose deadline has passed, fired once however late it is: as with a
    /// timerfd, a periodic timer that fell behind resumes at its next deadline after now.
    func nextOverdueTimer() -> UInt64? {
        state.withLock { s in
            guard let (token, timer) = s.timers.filter({ $0.value.deadline <= s.now })
                .min(by: { ($0.value.deadline, $0.key) < ($1.value.deadline, $1.key) })
            else { return nil }
            if timer.period > 0 {
                let missed = (s.now - timer.deadline) / timer.period + 1
                s.timers[token] = Timer(deadline: timer.deadline + missed * timer.period, period: timer.period)
            } else {
                s.timers.removeValue(forKey: token)
            }
            return token
        }
    }

    func takeWork() -> [UInt64] {
        state.withLock { s in defer { s.work.removeAll() }; return s.work }
    }

    func watchList() -> [(fd: Int32, events: UInt32, token: UInt64)] {
        state.withLock { $0.watches.map { (fd: $0.key, events: $0.value.events, token: $0.value.token) } }
    }
}
