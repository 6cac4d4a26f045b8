import ArgumentParser
import Dispatch
import Synchronization

/// Runs `body` to completion from a synchronous command. The root `veneer` command stays
/// synchronous because `veneer run` drives the VM from the main thread; the ctl commands talk to
/// veneerd with async clients, so each waits here for its detached task.
func runToCompletion(_ body: @escaping @Sendable () async throws -> Void) throws {
    let outcome = Mutex<Result<Void, any Error>?>(nil)
    let finished = DispatchSemaphore(value: 0)
    Task.detached {
        do {
            try await body()
            outcome.withLock { $0 = .success(()) }
        } catch {
            outcome.withLock { $0 = .failure(error) }
        }
        finished.signal()
    }
    finished.wait()
    switch outcome.withLock({ $0 }) {
    case .success, nil: return
    case .failure(let failure as CtlFailure): throw failure.report()
    case .failure(let error): throw error
    }
}
