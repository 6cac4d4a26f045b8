import CLibAIO
import Glibc

// The only place the engine touches libaio's iocb and io_event memory.
//
// Invariants:
//   - `iocbs`, `batch` and `events` are allocated once for `depth` entries and freed in deinit,
//     after the owner has waited for every submitted iocb (DiskQueue.close does).
//   - Slot i owns iocbs[i] and iovecs[i]. A slot is either free (in `freeSlots`) or reserved by the
//     caller; between `submit` accepting it and `collect` returning its event, neither its iocb
//     nor its iovec array is written or freed: the kernel reads them, and writes the memory they name.
//   - An iocb's tag is its slot index, so an event maps back to exactly one slot; a tag outside
//     0..<depth (which the kernel never returns) is dropped rather than trusted.
//   - The memory an iovec names belongs to the caller, who keeps it valid until the slot's event.

/// One io_context with `depth` iocb slots and the eventfd its completions signal.
final class AIORing {
    let depth: Int
    let eventFD: Int32
    /// Slots neither reserved nor in the kernel.
    private(set) var freeSlots: [Int]
    /// Slots submitted whose events have not been collected.
    private(set) var inFlight = 0

    private let context: io_context_t
    private let iocbs: UnsafeMutablePointer<iocb>
    private let batch: UnsafeMutablePointer<UnsafeMutablePointer<iocb>?>
    private let events: UnsafeMutablePointer<io_event>
    private var iovecs: [UnsafeMutableBufferPointer<iovec>]

    /// Fails with the errno of io_setup or eventfd.
    init(depth: Int) throws(AIOSetupFailure) {
        let fd = veneer_aio_eventfd()
        guard fd >= 0 else { throw AIOSetupFailure(call: "eventfd", errno: errno) }
        var ctx: io_context_t? = nil
        let rc = io_setup(Int32(depth), &ctx)
        guard rc == 0, let ctx else {
            Glibc.close(fd)
            throw AIOSetupFailure(call: "io_setup(\(depth))", errno: rc < 0 ? -rc : EINVAL)
        }
        self.depth = depth
        self.eventFD = fd
        self.context = ctx
        iocbs = .allocate(capacity: depth)
        iocbs.initialize(repeating: iocb(), count: depth)
        batch = .allocate(capacity: depth)
        batch.initialize(repeating: nil, count: depth)
        events = .allocate(capacity: depth)
        events.initialize(repeating: io_event(), count: depth)
        iovecs = Array(repeating: UnsafeMutableBufferPointer(start: nil, count: 0), count: depth)
        freeSlots = Array((0..<depth).reversed())
    }

    deinit {
        // The owner waited for every iocb (see invariants), so the kernel holds no pointer into these.
        io_destroy(context)
        Glibc.close(eventFD)
        iocbs.deallocate()
        batch.deallocate()
        events.deallocate()
        for vector in iovecs { vector.deallocate() }
    }

    func reserveSlot() -> Int? { freeSlots.popLast() }
    func releaseSlot(_ slot: Int) { freeSlots.append(slot) }

    /// Fills `slot` for a read or write of `segments` (at most IOV_MAX of them) at `offset` of `fd`.
    func prepareTransfer(slot: Int, write: Bool, fd: Int32, offset: UInt64, segments: [DiskBuffer], dsync: Bool) {
        if iovecs[slot].count < segments.count {
            iovecs[slot].deallocate()
            iovecs[slot] = .allocate(capacity: max(segments.count, 8))
        }
        let vector = iovecs[slot]
        for (index, segment) in segments.enumerated() {
            vector[index] = iovec(iov_base: segment.base, iov_len: segment.count)
        }
        veneer_aio_prep_rw(iocbs + slot, write ? 1 : 0, fd, vector.baseAddress, Int32(segments.count),
                           Int64(offset), dsync ? 1 : 0, eventFD, UInt64(slot))
    }

    /// Fills `slot` for an fdatasync of `fd`.
    func prepareDataSync(slot: Int, fd: Int32) {
        veneer_aio_prep_fdsync(iocbs + slot, fd, eventFD, UInt64(slot))
    }

    /// One io_submit of the prepared `slots`: the number the kernel took (a prefix of `slots`), or
    /// a negative errno when it took none (the error is about the first slot).
    func submit(_ slots: ArraySlice<Int>) -> Int {
        guard !slots.isEmpty else { return 0 }
        for (index, slot) in slots.enumerated() { batch[index] = iocbs + slot }
        let taken = Int(io_submit(context, slots.count, batch))
        if taken > 0 { inFlight += taken }
        return taken
    }

    /// Events ready now (or at least one, when `wait` and something is in flight), as (slot, result):
    /// result is bytes moved or a negative errno.
    func collect(wait: Bool) -> [(slot: Int, result: Int64)] {
        var collected: [(slot: Int, result: Int64)] = []
        while inFlight > 0 {
            var zero = timespec(tv_sec: 0, tv_nsec: 0)
            let minimum = wait && collected.isEmpty ? 1 : 0
            let count = withUnsafeMutablePointer(to: &zero) { timeout in
                Int(io_getevents(context, minimum, depth, events, minimum == 1 ? nil : timeout))
            }
            if count == -Int(EINTR) { continue }
            guard count > 0 else { break }
            inFlight -= count
            for index in 0..<count {
                let tag = veneer_aio_event_tag(events + index)
                guard tag < UInt64(depth) else { continue }
                collected.append((Int(tag), veneer_aio_event_result(events + index)))
            }
            if count < depth { break }
        }
        return collected
    }

    /// Resets the eventfd's counter; call before `collect` so a completion after it signals again.
    func clearEventFD() {
        var counter: UInt64 = 0
        _ = Glibc.read(eventFD, &counter, MemoryLayout<UInt64>.size)
    }
}

/// io_setup or eventfd refused: which call, and its errno.
struct AIOSetupFailure: Error {
    var call: String
    var errno: Int32
}
