#if canImport(Glibc)
import Glibc
#endif

/// A child process of this tool running one conformance phase, so that a plugin crashing (or
/// hanging) in it ends only that phase.
///
/// Unsafe-pointer invariants: argv and the spawn attributes live until posix_spawn returns; the
/// pipes are ours to read and close; every child is waited for, also after a timeout (SIGKILL).
struct PhaseProcess {
    enum Termination: Equatable {
        case exited(Int32)
        case signalled(Int32)
        case timedOut
    }

    struct Outcome {
        var termination: Termination
        var stdout: String
        var stderr: String
    }

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// This executable, to run again as the child.
    static func ownExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Runs `executable arguments`, collecting its stdout and stderr, for at most `timeout` seconds.
    static func run(_ executable: String, _ arguments: [String], timeout: Int) throws(SpawnError) -> Outcome {
        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard makePipe(&outPipe) else { throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))") }
        guard makePipe(&errPipe) else {
            close(outPipe[0]); close(outPipe[1])
            throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(outPipe[1])
        close(errPipe[1])
        guard status == 0 else {
            close(outPipe[0]); close(errPipe[0])
            throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        var out: [UInt8] = [], err: [UInt8] = []
        let timedOut = drain(outPipe[0], into: &out, errPipe[0], into: &err, timeout: timeout, killing: pid)
        close(outPipe[0])
        close(errPipe[0])
        var wstatus: Int32 = 0
        while waitpid(pid, &wstatus, 0) < 0 && errno == EINTR {}
        let termination: Termination
        if timedOut {
            termination = .timedOut
        } else if wstatus & 0x7f == 0 {
            termination = .exited((wstatus >> 8) & 0xff)
        } else {
            termination = .signalled(wstatus & 0x7f)
        }
        return Outcome(termination: termination, stdout: String(decoding: out, as: UTF8.self),
                       stderr: String(decoding: err, as: UTF8.self))
    }

    /// A pipe whose ends are closed on exec (the tool is single-threaded: no fork can slip in
    /// between pipe and fcntl).
    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return true
    }

    /// Reads both pipes to their end; after `timeout` seconds kills the child (and keeps reading
    /// until its pipes close). Whether it had to kill it.
    private static func drain(_ a: Int32, into outA: inout [UInt8], _ b: Int32, into outB: inout [UInt8],
                              timeout: Int, killing pid: pid_t) -> Bool
    {
        var open = [a: true, b: true]
        var killed = false
        let deadline = monotonicSeconds() + Double(timeout)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while open.values.contains(true) {
            var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
                .filter { open[$0.fd] == true }
            let remaining = killed ? 1000 : max(0, Int32(min((deadline - monotonicSeconds()) * 1000, 60_000)))
            let n = poll(&fds, nfds_t(fds.count), remaining)
            if n < 0 && errno == EINTR { continue }
            if n == 0 {
                if killed { break }  // killed, yet a pipe stays open: something inherited it
                if monotonicSeconds() >= deadline {
                    kill(pid, SIGKILL)
                    killed = true
                }
                continue
            }
            for fd in fds where fd.revents != 0 {
                let count = read(fd.fd, &chunk, chunk.count)
                if count <= 0 {
                    open[fd.fd] = false
                } else if fd.fd == a {
                    outA += chunk.prefix(count)
                } else {
                    outB += chunk.prefix(count)
                }
            }
        }
        return killed
    }

    private static func monotonicSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// The signal's name for messages (SIGSEGV), or its number.
    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGSEGV: "SIGSEGV"
        case SIGBUS: "SIGBUS"
        case SIGILL: "SIGILL"
        case SIGFPE: "SIGFPE"
        case SIGABRT: "SIGABRT"
        case SIGKILL: "SIGKILL"
        case SIGTERM: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}
