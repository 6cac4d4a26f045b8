import CKVM
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Holds every vCPU out of KVM_RUN while the VM is paused.
///
/// `close()` raises the flag each vCPU checks before entering the guest; the caller then kicks the
/// vCPUs (as a stop does) and waits in `waitUntilParked` until each has reached `park` and sits
/// there, blocked in poll(2) on an eventfd, off the CPU. `open()` lowers the flag and makes the
/// eventfd readable, which releases them. A stop releases them too (`release()`): a parked vCPU
/// leaves as soon as the machine is stopping.
public final class VCPUGate: Sendable {
    private let closed = Atomic<Bool>(false)
    private let parkedCount = Atomic<Int>(0)
    private let wakeFD: OwnedFD

    public init() throws(SystemError) {
        let fd = ckvm_eventfd(1)
        guard fd >= 0 else { throw SystemError("eventfd") }
        wakeFD = OwnedFD(fd)
    }

    /// Checked on every pass of a vCPU's loop.
    @inline(__always)
    public var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// vCPUs waiting in `park` now.
    public var parked: Int { parkedCount.load(ordering: .acquiring) }

    /// Makes vCPUs park at their next pass. Serialised with `open` by the caller.
    public func close() {
        // Consume an earlier open's wake-up first, so a parking vCPU blocks.
        var value: UInt64 = 0
        _ = Glibc.read(wakeFD.raw, &value, 8)
        closed.store(true, ordering: .sequentiallyConsistent)
    }

    public func open() {
        closed.store(false, ordering: .sequentiallyConsistent)
        release()
    }

    /// Wakes parked vCPUs so they look at the flag and the stop state again.
    public func release() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD.raw, &one, 8)
    }

    /// A vCPU waits here while the gate is closed and the machine is not stopping.
    public func park(unless stop: StopController) {
        parkedCount.add(1, ordering: .sequentiallyConsistent)
        defer { parkedCount.subtract(1, ordering: .sequentiallyConsistent) }
        var entry = pollfd(fd: wakeFD.raw, events: Int16(POLLIN), revents: 0)
        while isClosed && !stop.isStopping {
            _ = poll(&entry, 1, -1)    // EINTR (a kick) just looks again
        }
    }

    /// Waits until `count` vCPUs are parked; false when the machine began stopping or `timeoutNs`
    /// passed first.
    public func waitUntilParked(_ count: Int, stop: StopController, timeoutNs: UInt64) -> Bool {
        let deadline = EventLoop.now() &+ timeoutNs
        while parked < count {
            if stop.isStopping || EventLoop.now() >= deadline { return false }
            usleep(200)
        }
        return true
    }
}
