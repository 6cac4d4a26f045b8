import CKVM
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One place that decides the VM is stopping: the first reason wins, every vCPU is kicked out of
/// KVM_RUN, and the thread waiting in `wait()` wakes. Safe to call from any thread, including
/// from inside a device callback (it never calls back into devices).
public final class StopController: Sendable {
    private let reason = Mutex<MachineExit?>(nil)
    private let stopping = Atomic<Bool>(false)
    private let kickers = Mutex<[@Sendable () -> Void]>([])
    private let wakeFD: OwnedFD

    public init() throws(SystemError) {
        let fd = ckvm_eventfd(0)
        guard fd >= 0 else { throw SystemError("eventfd") }
        wakeFD = OwnedFD(fd)
    }

    /// Checked on every exit: a relaxed load.
    @inline(__always)
    public var isStopping: Bool { stopping.load(ordering: .relaxed) }

    public var exit: MachineExit? { reason.withLock { $0 } }

    /// Registers how to kick one vCPU out of KVM_RUN. A stop that came first kicks it at once:
    /// `request` publishes `stopping` before reading the kickers, and this reads `stopping` after
    /// adding, so every vCPU is kicked by one side or the other.
    public func addKicker(_ kick: @escaping @Sendable () -> Void) {
        kickers.withLock { $0.append(kick) }
        if stopping.load(ordering: .sequentiallyConsistent) { kick() }
    }

    /// Bumped by each request for a vCPU state report; each vCPU reports when it sees it change.
    private let reportGeneration = Atomic<UInt64>(0)

    /// Kicks every vCPU out of KVM_RUN once, without stopping, so each logs its registers.
    public func requestStateReport() {
        reportGeneration.add(1, ordering: .sequentiallyConsistent)
        for kick in kickers.withLock({ $0 }) { kick() }
    }

    /// The current report generation: a vCPU that saw an older one owes a report.
    public var stateReportGeneration: UInt64 { reportGeneration.load(ordering: .sequentiallyConsistent) }

    /// Kicks every vCPU out of KVM_RUN once (a pause uses this; the vCPUs then look at the gate).
    public func kickAll() {
        for kick in kickers.withLock({ $0 }) { kick() }
    }

    public func request(_ exit: MachineExit) {
        let first = reason.withLock { r -> Bool in
            guard r == nil else { return false }
            r = exit
            return true
        }
        guard first else { return }
        stopping.store(true, ordering: .sequentiallyConsistent)
        for kick in kickers.withLock({ $0 }) { kick() }
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD.raw, &one, 8)
    }

    /// Blocks until a stop is requested and returns its reason.
    public func wait() -> MachineExit {
        while true {
            if let r = exit { return r }
            var value: UInt64 = 0
            _ = Glibc.read(wakeFD.raw, &value, 8)
        }
    }
}
