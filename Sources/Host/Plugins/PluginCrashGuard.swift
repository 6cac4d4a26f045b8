import CKVM

/// The calls into a plugin a crash report can name, by their names in the C descriptor.
public enum PluginCallback: Int, CaseIterable, Sendable {
    case create, reset, start, stop, destroy, io, timer, fdReady, work, save, load
    case vmbusOpened, vmbusSignalled, vmbusClosed, pciConfig, hvMessage, hvEvent, control, runState

    public var name: String {
        switch self {
        case .create: "create"
        case .reset: "reset"
        case .start: "start"
        case .stop: "stop"
        case .destroy: "destroy"
        case .io: "io"
        case .timer: "timer"
        case .fdReady: "fd_ready"
        case .work: "work"
        case .save: "save"
        case .load: "load"
        case .vmbusOpened: "vmbus_opened"
        case .vmbusSignalled: "vmbus_signalled"
        case .vmbusClosed: "vmbus_closed"
        case .pciConfig: "pci_config"
        case .hvMessage: "hv_message"
        case .hvEvent: "hv_event"
        case .control: "control"
        case .runState: "run_state"
        }
    }
}

/// Turns a plugin crash into one line and a known exit status (see Sources/CKVM/include/crash_guard.h):
/// `veneer: device 'com1' (plugin serial16550) crashed in io (SIGSEGV)`, then exit 71.
public enum PluginCrashGuard {
    /// The status a process exits with when a plugin crashed in one of its callbacks, the same as
    /// for any other fatal device failure (`MachineExit.deviceError`).
    public static let exitStatus: Int32 = 71

    /// Installs the handler for the process; `program` starts the line ("veneer").
    public static func install(program: String, exitStatus: Int32 = exitStatus) {
        _ = ckvm_crash_guard_install("\(program): ", exitStatus)
    }

    /// Runs `body` marked as `site` (nested marks restore the outer one).
    @inline(__always)
    static func marked<T>(_ site: UnsafePointer<ckvm_crash_site>, _ body: () throws(PluginLoadError) -> T) throws(PluginLoadError) -> T {
        let previous = ckvm_crash_enter(site)
        defer { ckvm_crash_leave(previous) }
        return try body()
    }
}

/// Preformatted crash lines, one per callback for a device instance, or one for loading a file.
///
/// Unsafe-pointer invariants: the sites and their texts are allocated in init and freed in deinit,
/// never changed in between; whoever marks a thread with one keeps this object alive until the
/// mark is restored (PluginDevice holds its sites as long as it can call the plugin).
final class CrashSites: @unchecked Sendable {
    private let sites: UnsafeMutablePointer<ckvm_crash_site>
    private let count: Int

    /// One site per text.
    init(_ texts: [String]) {
        count = texts.count
        sites = .allocate(capacity: max(count, 1))
        for (i, text) in texts.enumerated() {
            let bytes = Array(text.utf8)
            let storage = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            for (j, b) in bytes.enumerated() { storage[j] = CChar(bitPattern: b) }
            storage[bytes.count] = 0
            (sites + i).initialize(to: ckvm_crash_site(text: storage, length: bytes.count))
        }
    }

    /// The sites of every callback of device `instance` of plugin `plugin`, in `PluginCallback` order.
    convenience init(instance: String, plugin: String) {
        self.init(PluginCallback.allCases.map { "device '\(instance)' (plugin \(plugin)) crashed in \($0.name)" })
    }

    subscript(_ index: Int) -> UnsafePointer<ckvm_crash_site> { UnsafePointer(sites + index) }
    subscript(_ callback: PluginCallback) -> UnsafePointer<ckvm_crash_site> { UnsafePointer(sites + callback.rawValue) }

    deinit {
        for i in 0..<count { UnsafeMutablePointer(mutating: sites[i].text)?.deallocate() }
        sites.deinitialize(count: count)
        sites.deallocate()
    }
}
