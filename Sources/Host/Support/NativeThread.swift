import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// A joinable POSIX thread running one closure. vCPUs and the event loop need real threads with
/// known pthread ids (to signal them out of KVM_RUN), not tasks on a shared pool.
///
/// Unsafe-pointer invariants: the closure box is retained for the thread and released by it.
public final class NativeThread: @unchecked Sendable {
    private final class Box {
        let body: @Sendable () -> Void
        let name: String?
        init(_ body: @escaping @Sendable () -> Void, name: String) {
            self.body = body
            self.name = String(name.prefix(15))
        }
    }

    public let id: pthread_t
    private var joined = false

    public init(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
        let box = Unmanaged.passRetained(Box(body, name: name)).toOpaque()
        var tid = pthread_t()
        let status = pthread_create(&tid, nil, { arg in
            guard let arg else { return nil }
            let box = Unmanaged<Box>.fromOpaque(arg).takeRetainedValue()
            if let name = box.name { ckvm_set_thread_name(name) }
            // An alternate signal stack, so a plugin overflowing this thread's stack is reported.
            ckvm_crash_guard_thread_begin()
            box.body()
            ckvm_crash_guard_thread_end()
            return nil
        }, box)
        guard status == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw SystemError("pthread_create \(name)", errno: status)
        }
        id = tid
    }

    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(id, nil)
    }
}
