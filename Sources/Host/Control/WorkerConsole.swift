import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// The guest console's host side in worker mode: the process's standard input and output become
/// pipes the worker owns, so a serial device configured with `output = "stdout"` and
/// `input = "stdin"` talks to the worker, which keeps a ring of recent output and relays it to
/// attached clients. Installed before any device is created; the worker's own diagnostics go to
/// stderr only.
public struct WorkerConsole: Sendable {
    /// What the guest wrote (read end, non-blocking): the control thread drains it.
    public let output: OwnedFD
    /// What the guest reads (write end, non-blocking): client keystrokes go here.
    public let input: OwnedFD

    /// Pipe buffer asked for on each pipe, so a burst of output waits in the kernel rather than
    /// stalling a vCPU while the control thread is busy.
    static let pipeBytes: Int32 = 1 << 20
    /// F_SETPIPE_SZ (Linux; Glibc hides it behind _GNU_SOURCE).
    static let setPipeSize: Int32 = 1031

    public static func install() throws(SystemError) -> WorkerConsole {
        var out: [Int32] = [-1, -1]
        var inp: [Int32] = [-1, -1]
        guard ckvm_pipe_cloexec(&out) == 0 else { throw SystemError("pipe for the console output") }
        guard ckvm_pipe_cloexec(&inp) == 0 else {
            close(out[0]); close(out[1])
            throw SystemError("pipe for the console input")
        }
        let outputRead = OwnedFD(out[0]), inputWrite = OwnedFD(inp[1])
        defer { close(out[1]); close(inp[0]) }
        _ = fcntl(out[1], setPipeSize, pipeBytes)
        _ = fcntl(inp[0], setPipeSize, pipeBytes)
        // fd 1: the guest's output (a blocking write end, as a terminal would be); fd 0: its input,
        // non-blocking so a serial device's read never stalls the event thread.
        guard dup2(out[1], 1) == 1 else { throw SystemError("dup2 the console output over stdout") }
        guard dup2(inp[0], 0) == 0 else { throw SystemError("dup2 the console input over stdin") }
        _ = fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK)
        _ = fcntl(outputRead.raw, F_SETFL, fcntl(outputRead.raw, F_GETFL) | O_NONBLOCK)
        _ = fcntl(inputWrite.raw, F_SETFL, fcntl(inputWrite.raw, F_GETFL) | O_NONBLOCK)
        return WorkerConsole(output: outputRead, input: inputWrite)
    }
}
