import CManagementSupport
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How a process ended, when veneerd could learn it from waitpid (its own children only).
public enum ProcessTermination: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// The wait status as waitpid returns it (WIFEXITED/WTERMSIG are macros Swift cannot import).
    init(waitStatus: Int32) {
        let signal = waitStatus & 0x7f
        self = signal == 0 ? .exited((waitStatus >> 8) & 0xff) : .signaled(signal)
    }

    public var description: String {
        switch self {
        case .exited(let status): "exited with status \(status)"
        case .signaled(let signal): "killed by signal \(signal)\(signal == SIGKILL ? " (SIGKILL)" : signal == SIGTERM ? " (SIGTERM)" : "")"
        }
    }
}

/// Watches processes end through pidfds: one thread polls every watched pidfd (plus a pipe that
/// wakes it for new watches). A pidfd works for our children and for workers a previous veneerd
/// started (re-attached, not our children); a child is reaped here so none lingers as a zombie.
final class ExitWatcher: Sendable {
    static let shared = ExitWatcher()

    private struct Watch {
        var pid: pid_t
        var continuation: CheckedContinuation<ProcessTermination?, Never>
    }

    private struct State {
        var watches: [Int32: Watch] = [:]
        var started = false
    }

    private let state = Mutex(State())
    /// [read end, write end], both close-on-exec and non-blocking; written to wake the poll.
    private let wakePipe: (Int32, Int32)

    private init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
        }
        wakePipe = (fds[0], fds[1])
    }

    /// A pidfd for `pid` (close-on-exec), or nil when the process no longer exists.
    static func openPidfd(_ pid: pid_t) -> Int32? {
        let fd = veneer_pidfd_open(pid)
        return fd >= 0 ? fd : nil
    }

    /// Returns once the process behind `pidfd` has ended, with its termination when it was our
    /// child (reaped here), else nil. Takes ownership of `pidfd` and closes it.
    func waitForExit(pid: pid_t, pidfd: Int32) async -> ProcessTermination? {
        await withCheckedContinuation { continuation in
            let startThread = state.withLock { s in
                s.watches[pidfd] = Watch(pid: pid, continuation: continuation)
                defer { s.started = true }
                return !s.started
            }
            if startThread {
                DispatchQueue(label: "veneerd.exit-watcher").async { [self] in run() }
            } else {
                wake()
            }
        }
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakePipe.1, &byte, 1)
    }

    private func run() {
        while true {
            let watched = state.withLock { Array($0.watches.keys) }
            var fds = [pollfd(fd: wakePipe.0, events: Int16(POLLIN), revents: 0)]
            fds += watched.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let n = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), -1) }
            if n < 0 { continue }   // EINTR; nothing else is expected with valid descriptors
            if fds[0].revents != 0 {
                var buffer = [UInt8](repeating: 0, count: 64)
                while buffer.withUnsafeMutableBytes({ read(wakePipe.0, $0.baseAddress, $0.count) }) > 0 {}
            }
            for entry in fds.dropFirst() where entry.revents != 0 {
                guard let watch = state.withLock({ $0.watches.removeValue(forKey: entry.fd) }) else { continue }
                close(entry.fd)
                watch.continuation.resume(returning: Self.reap(watch.pid))
            }
        }
    }

    /// waitpid for our child (nil for a process that is not our child: ECHILD).
    private static func reap(_ pid: pid_t) -> ProcessTermination? {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, 0)
            if r == pid { return ProcessTermination(waitStatus: status) }
            if r < 0, errno == EINTR { continue }
            return nil
        }
    }
}
