import ArgumentParser
import Dispatch
import Synchronization

/// Runs `body` to completion from a synchronous command. The root `veneer` command stays
/// synchronous because `veneer run` drives the VM from the main thread; the ctl commands talk to
/// veneerd with async clients, so each waits here for its detached task.
func runToCompletion(_ body: @escaping @Sendable () async throws -> Void) throws {
    let outcome = Outcome()
    let finished = DispatchSemaphore(value: 0)
    Task.detached {
        do {
            try await body()
            outcome.result.withLock { $0 = .success(()) }
        } catch {
            outcome.result.withLock { $0 = .failure(error) }
        }
        finished.signal()
    }
    finished.wait()
    switch outcome.result.withLock({ $0 }) {
    case .success, nil: return
    case .failure(let failure as CtlFailure): throw failure.report()
    case .failure(let error): throw error
    }
}

/// The detached task's result, handed to the waiting thread.
private final class Outcome: Sendable {
    let result = Mutex<Result<Void, any Error>?>(nil)
}
