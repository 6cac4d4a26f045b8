import CKVM
import FoundationEssentials
import WorkerControlProtocol
#if canImport(Glibc)
import Glibc
#endif

/// `veneer run CONFIG --control-dir DIR`: one VM's worker process (Hyper-V's VMWP). Besides
/// running the VM as `veneer run` does, it serves `WorkerControl` on DIR/control.sock, serves the
/// guest console (see `WorkerConsole`), and records how it ended in DIR/exit.json.
///
/// DIR holds, while the worker lives, `worker.pid` and `control.sock`; both are removed when it
/// exits, after `exit.json` is written, so a pid file never outlives its process (a recycled pid
/// cannot be mistaken for the worker). A stale `exit.json` from an earlier worker is removed at start.
public enum Worker {
    /// How the worker ended: the VM's exit, or a failure before the VM could run.
    public enum End: Sendable {
        case machine(MachineExit)
        case setup(String, status: Int32)

        public var status: Int32 {
            switch self {
            case .machine(let exit): exit.exitStatus
            case .setup(_, let status): status
            }
        }
    }

    public static func run(config: VMConfig, controlDirectory dir: String, registry: PluginRegistry, logger: Logger,
                           exitStatus: (MachineError) -> Int32) -> End {
        do {
            try prepare(dir)
        } catch {
            return .setup("control directory '\(dir)': \(error)", status: SetupExitStatus.hostUnavailable)
        }
        let end = serve(config: config, dir: dir, registry: registry, logger: logger, exitStatus: exitStatus)
        let record: WorkerExitRecord = switch end {
        case .machine(let exit):
            WorkerExitRecord(reason: reason(exit), status: exit.exitStatus, message: exit.description, timeMs: WorkerSession.realtimeMs())
        case .setup(let message, let status):
            WorkerExitRecord(reason: "deviceError", status: status, message: message, timeMs: WorkerSession.realtimeMs())
        }
        do { try writeAtomically(path(dir, WorkerControl.exitRecordName), JSONEncoder().encode(record)) } catch {
            logger.log(.error, "worker", "cannot write \(WorkerControl.exitRecordName): \(error)")
        }
        unlink(path(dir, WorkerControl.socketName))
        unlink(path(dir, WorkerControl.pidFileName))
        return end
    }

    /// The exit record's reason for a machine exit.
    public static func reason(_ exit: MachineExit) -> String {
        switch exit {
        case .powerOff, .reset: "powerOff"
        case .guestExit: "guestExit"
        case .stopped, .interrupted(SIGTERM): "stopped"
        case .interrupted: "signal"
        case .fault: "fault"
        case .deviceError: "deviceError"
        }
    }

    static func path(_ dir: String, _ name: String) -> String { dir.hasSuffix("/") ? dir + name : dir + "/" + name }

    /// Creates the directory (0700) if missing, drops an old exit record, writes the pid file.
    static func prepare(_ dir: String) throws(SystemError) {
        if mkdir(dir, 0o700) != 0 {
            guard errno == EEXIST else { throw SystemError("mkdir") }
            var info = stat()
            guard stat(dir, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { throw SystemError("not a directory", errno: ENOTDIR) }
        }
        if unlink(path(dir, WorkerControl.exitRecordName)) != 0, errno != ENOENT { throw SystemError("remove the old \(WorkerControl.exitRecordName)") }
        do { try writeAtomically(path(dir, WorkerControl.pidFileName), Data("\(getpid())\n".utf8)) } catch { throw error }
    }

    /// Writes `data` to a temporary file beside `path` and renames it over `path` (mode 0600), so
    /// a reader sees the whole file or none.
    static func writeAtomically(_ path: String, _ data: Data) throws(SystemError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("create '\(temporary)'") }
        let bytes = Array(data)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw in raw.baseAddress.map { Glibc.write(fd, $0 + done, bytes.count - done) } ?? -1 }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let code = errno
                close(fd)
                throw SystemError("write '\(temporary)'", errno: code)
            }
            done += n
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw SystemError("rename '\(temporary)' to '\(path)'") }
    }

    private static func serve(config: VMConfig, dir: String, registry: PluginRegistry, logger: Logger,
                              exitStatus: (MachineError) -> Int32) -> End {
        // Termination signals are blocked before any thread exists, so every thread inherits the
        // mask and they reach the VM's event loop (its signalfd), never a default action.
        let signals = ckvm_termination_signalfd()
        guard signals >= 0 else { return .setup("cannot block termination signals: \(SystemError("pthread_sigmask"))", status: SetupExitStatus.hostUnavailable) }
        close(signals)
        let console: WorkerConsole
        let listener: OwnedFD
        do {
            console = try WorkerConsole.install()
            listener = try ControlSocket.listen(path: path(dir, WorkerControl.socketName))
        } catch {
            return .setup("\(error)", status: SetupExitStatus.hostUnavailable)
        }
        let session = WorkerSession(config: config, logger: logger)
        let server: ControlServer
        let thread: NativeThread
        do {
            server = try ControlServer(listener: listener, console: console, handler: session, logger: logger)
            session.onEvent { server.publish($0) }
            thread = try NativeThread(name: "veneer-control") { server.run() }
        } catch {
            return .setup("\(error)", status: SetupExitStatus.hostUnavailable)
        }
        defer {
            server.finish()
            thread.join()
        }
        var startReason = "worker started"
        while true {
            let machine: Machine
            do { machine = try Machine(config: config, registry: registry, logger: logger) } catch {
                session.stopping(reason: "the VM could not be built")
                return .setup("\(error)", status: exitStatus(error))
            }
            session.attach(machine)
            let reason = startReason
            let exit = machine.run { session.started(reason: reason) }
            let requested = session.detach()
            if exit == .reset, requested || config.onReset == .restart {
                startReason = requested ? "reset by request" : "guest requested a reset (on_reset = restart)"
                logger.log(.info, "vm", "\(startReason): restarting")
                session.restarting(reason: startReason)
                continue
            }
            session.stopping(reason: exit.description)
            return .machine(exit)
        }
    }
}
