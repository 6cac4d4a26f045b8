import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// A child process running plugin code on behalf of its parent (a `veneer-plugin-test` check,
/// the probe of one file for `veneer plugins`), so that a plugin crashing or hanging there ends
/// only the child.
///
/// Unsafe-pointer invariants: argv and the spawn attributes live until posix_spawn returns; the
/// pipes are ours to read and close; every child is waited for, also after a timeout (SIGKILL).
/// The child gets stdout, stderr and `resultFD` as pipes; its result arrives on the last.
public struct ChildProcess {
    public enum Termination: Equatable, Sendable {
        case exited(Int32)
        case signalled(Int32)
        case timedOut
    }

    public struct Outcome: Sendable {
        public var termination: Termination
        /// What the plugin printed, byte for byte.
        public var stdout: [UInt8]
        public var stderr: String
        public var result: String
    }

    public struct SpawnError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// This executable, to run again as the child.
    public static func ownExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Runs `executable arguments`, collecting its stdout, its stderr and what it writes to fd 3
    /// (`resultFD`: the child's result, apart from anything the plugin prints), for at most
    /// `timeout` seconds.
    public static func run(_ executable: String, _ arguments: [String], timeout: Int) throws(SpawnError) -> Outcome {
        var pipes: [[Int32]] = []
        for _ in 0..<3 {
            var fds: [Int32] = [-1, -1]
            guard makePipe(&fds) else {
                pipes.flatMap { $0 }.forEach { close($0) }
                throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))")
            }
            pipes.append(fds)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (i, target) in [Int32(1), 2, resultFD].enumerated() { posix_spawn_file_actions_adddup2(&actions, pipes[i][1], target) }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        pipes.forEach { close($0[1]) }
        defer { pipes.forEach { close($0[0]) } }
        guard status == 0 else { throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(status)))") }
        var outputs: [[UInt8]] = [[], [], []]
        let timedOut = drain(pipes.map { $0[0] }, into: &outputs, timeout: timeout, killing: pid)
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
        return Outcome(termination: termination, stdout: outputs[0], stderr: String(decoding: outputs[1], as: UTF8.self),
                       result: String(decoding: outputs[2], as: UTF8.self))
    }

    /// The child's descriptor for its result.
    public static let resultFD: Int32 = 3

    /// A pipe whose ends are closed on exec (so no other child inherits them).
    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        fds.withUnsafeMutableBufferPointer { ckvm_pipe_cloexec($0.baseAddress) == 0 }
    }

    /// Reads every pipe to its end; after `timeout` seconds kills the child (and keeps reading
    /// until its pipes close). Whether it had to kill it.
    private static func drain(_ fds: [Int32], into outputs: inout [[UInt8]], timeout: Int, killing pid: pid_t) -> Bool {
        var open = Array(repeating: true, count: fds.count)
        var killed = false
        let deadline = monotonicSeconds() + Double(timeout)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while open.contains(true) {
            let watched = fds.indices.filter { open[$0] }
            var polled = watched.map { pollfd(fd: fds[$0], events: Int16(POLLIN), revents: 0) }
            let remaining = killed ? 1000 : max(0, Int32(min((deadline - monotonicSeconds()) * 1000, 60_000)))
            let n = poll(&polled, nfds_t(polled.count), remaining)
            if n < 0 && errno == EINTR { continue }
            if n == 0 {
                if killed { break }  // killed, yet a pipe stays open: something inherited it
                if monotonicSeconds() >= deadline {
                    kill(pid, SIGKILL)
                    killed = true
                }
                continue
            }
            for (k, index) in watched.enumerated() where polled[k].revents != 0 {
                let count = read(fds[index], &chunk, chunk.count)
                if count <= 0 { open[index] = false } else { outputs[index] += chunk.prefix(count) }
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
    public static func signalName(_ signal: Int32) -> String {
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
