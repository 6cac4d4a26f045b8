#if canImport(Glibc)
import Glibc
#endif

/// Raw mode for an interactive console, restored on every way out: the normal return, `exit`,
/// and the catchable termination signals (SIGKILL leaves nothing to run; `stty sane` then).
///
/// Invariants for the process-global state below: `savedTermios` is written once, by `enterRaw`,
/// before the atexit hook and the signal handlers that read it are installed, and only ever read
/// afterwards (from those handlers and `restore`), so no read races a write. tcsetattr, signal and
/// raise are async-signal-safe, which is all a handler does.
enum TerminalMode {
    nonisolated(unsafe) private static var savedTermios: termios?
    nonisolated(unsafe) private static var hooksInstalled = false

    static let restoredSignals: [Int32] = [SIGTERM, SIGHUP, SIGINT, SIGQUIT]

    /// Puts the terminal on `fd` in raw mode (bytes pass as typed: Ctrl-C reaches the guest);
    /// output post-processing stays on so a guest's bare "\n" still starts a new line.
    /// Returns false when `fd` is not a terminal (pipes: nothing to change or restore).
    static func enterRaw(fd: Int32 = 0) -> Bool {
        guard isatty(fd) == 1 else { return false }
        var original = termios()
        guard tcgetattr(fd, &original) == 0 else { return false }
        savedTermios = original
        if !hooksInstalled {
            hooksInstalled = true
            atexit { TerminalMode.restore() }
            for number in restoredSignals {
                signal(number) { received in
                    TerminalMode.restore()
                    signal(received, SIG_DFL)
                    raise(received)
                }
            }
        }
        var raw = original
        cfmakeraw(&raw)
        raw.c_oflag |= tcflag_t(OPOST | ONLCR)
        return tcsetattr(fd, TCSAFLUSH, &raw) == 0
    }

    /// Puts back the settings `enterRaw` found; harmless when raw mode was never entered.
    static func restore(fd: Int32 = 0) {
        guard var original = savedTermios else { return }
        _ = tcsetattr(fd, TCSANOW, &original)
    }
}
