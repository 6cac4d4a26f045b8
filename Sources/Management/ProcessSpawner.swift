import CManagementSupport
#if canImport(Glibc)
import Glibc
#endif

/// Starts child processes with posix_spawn: a new session (so the child outlives veneerd and is
/// not hit by its terminal's signals), stdin from /dev/null, stdout and stderr appended to one
/// file, a working directory, and no descriptor of ours beyond 0-2 (closefrom(3) in the child,
/// on top of every descriptor veneerd opens being close-on-exec).
///
/// Unsafe pointer invariants: the argv/envp C strings are strdup'd copies owned by this function
/// and freed after posix_spawn returns (posix_spawn copies what it needs before returning); the
/// attribute and file-action objects are initialised before use and destroyed on every path.
enum ProcessSpawner {
    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// Spawns `executable` with `arguments` (argv[1...]); returns the child's pid.
    static func spawn(_ executable: String, _ arguments: [String], workingDirectory: String, outputFile: String,
                      newSession: Bool) throws(SpawnError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        guard posix_spawn_file_actions_init(&actions) == 0 else { throw SpawnError(description: "posix_spawn_file_actions_init failed") }
        defer { posix_spawn_file_actions_destroy(&actions) }
        guard posix_spawnattr_init(&attributes) == 0 else { throw SpawnError(description: "posix_spawnattr_init failed") }
        defer { posix_spawnattr_destroy(&attributes) }

        var status = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if status == 0 { status = posix_spawn_file_actions_addopen(&actions, 1, outputFile, O_WRONLY | O_CREAT | O_APPEND, 0o600) }
        if status == 0 { status = posix_spawn_file_actions_adddup2(&actions, 1, 2) }
        if status == 0 { status = veneer_spawn_addclosefrom(&actions, 3) }
        if status == 0 { status = veneer_spawn_addchdir(&actions, workingDirectory) }
        guard status == 0 else { throw SpawnError(description: "cannot prepare the child's file actions: \(StateDirectory.errnoText(status))") }

        // The child starts with default signal dispositions and an empty mask, whatever veneerd
        // (or NIO) blocked or ignored (SIGPIPE above all).
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var flags = Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        if newSession { flags |= veneer_spawn_setsid_flag() }
        guard posix_spawnattr_setflags(&attributes, flags) == 0 else { throw SpawnError(description: "posix_spawnattr_setflags failed") }

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let envp: [UnsafeMutablePointer<CChar>?] = currentEnvironment().map { strdup($0) } + [nil]
        defer { for p in envp { free(p) } }

        var pid: pid_t = 0
        let result = argv.withUnsafeBufferPointer { a in
            envp.withUnsafeBufferPointer { e in
                guard let arguments = a.baseAddress, let environment = e.baseAddress else { return EINVAL }
                return posix_spawn(&pid, executable, &actions, &attributes, arguments, environment)
            }
        }
        guard result == 0 else { throw SpawnError(description: "cannot start '\(executable)': \(StateDirectory.errnoText(result))") }
        return pid
    }

    /// `environ` as strings (copied, so the spawn never reads a table another thread changes).
    private static func currentEnvironment() -> [String] {
        var result: [String] = []
        let table: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
        guard var entry = table else { return result }
        while let string = entry.pointee {
            result.append(String(cString: string))
            entry += 1
        }
        return result
    }
}
