#if canImport(Glibc)
import Glibc
#endif

/// A readers-writer lock for the exit-path buses: vCPU threads look addresses up under the read
/// lock, and the rare changes (BAR moves, region registration) take the write lock.
///
/// Writers are preferred, so a guest that keeps every vCPU exiting cannot starve a BAR move; the
/// price is that a thread must never take the read lock twice (the second would wait behind a
/// queued writer). Readers therefore hold it only around a lookup, never across a device call.
///
/// Unsafe-pointer invariants: the `pthread_rwlock_t` lives in memory allocated here and never
/// moved (pthread objects must not be copied), initialised in `init` and destroyed in `deinit`,
/// when no thread can hold it any more.
final class ReadWriteLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        let status = pthread_rwlock_init(lock, &attributes)
        pthread_rwlockattr_destroy(&attributes)
        // Only fails for lack of memory or bad attributes; neither leaves a usable VM.
        precondition(status == 0, "pthread_rwlock_init failed: \(status)")
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    @inline(__always)
    func reading<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    @inline(__always)
    func writing<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
