import CKVM
import Synchronization
import VeneerPluginABI

/// Why a plugin instance failed, with the plugin's own message when it gave one.
public struct PluginDeviceError: Error, CustomStringConvertible, Sendable, Equatable {
    public var instance: String
    public var plugin: String
    public var operation: String
    public var reason: String
    public var description: String { "device '\(instance)' (plugin \(plugin)): \(operation) failed: \(reason)" }
}

/// One instance of a plugin: the `veneer_device *`, its serialising lock and its host binding.
///
/// Unsafe-pointer invariants: `device` is the plugin's handle from `create`, used until `destroy`
/// and never after; callbacks are read from the descriptor once, at init. Unless the plugin is
/// concurrent every call into it holds `lock`, as the ABI promises. Every call into it marks the
/// thread with its crash site (`PluginCrashGuard`); `sites` lives as long as this object. The
/// create arguments (value arrays, groups' items, strings) are allocated for that one call and
/// freed after it returns, as the ABI says they are valid only during `create`.
public final class PluginDevice: @unchecked Sendable {
    public typealias IOCallback = @convention(c) (OpaquePointer?, UInt32, UInt64, UInt32, UInt32, UnsafeMutablePointer<UInt64>?) -> Void
    public typealias PCIConfigCallback = @convention(c) (OpaquePointer?, UInt32, UInt32, UInt32, UInt32, UnsafeMutablePointer<UInt32>?) -> Void

    public let library: PluginLibrary
    public let instanceName: String
    public let binding: HostBinding
    private let lock = Mutex(())
    private let serialised: Bool
    /// A concurrent plugin's VMBus events: one lock per channel, so events of different channels
    /// may run at once but never two of one channel (ABI 1.7). Channel ids are relids (at most
    /// 2047), which bounds the table.
    private let channelLocks = Mutex<[UInt32: ChannelLock]>([:])
    private final class ChannelLock: Sendable { let mutex = Mutex(()) }
    private let descriptor: veneer_plugin_descriptor
    private let ioCallback: IOCallback?
    private let pciConfigCallback: PCIConfigCallback?
    private let sites: CrashSites
    private let ioSite: UnsafePointer<ckvm_crash_site>
    // Set by create and cleared by destroy, never while a vCPU can call `io`; unchecked so the
    // exit path pays no dynamic exclusivity check.
    @exclusivity(unchecked) private var device: OpaquePointer?
    /// The errors reported through set_error since the last call began, oldest first: the host's
    /// own detail (e.g. which device holds a port) often precedes the plugin's summary of it.
    /// Only the last few are kept, so a plugin calling set_error from `io` cannot grow it.
    private let errors = Mutex<[String]>([])
    private static let keptErrors = 4

    public var info: PluginInfo { library.info }
    public var isCreated: Bool { device != nil }

    public init(library: PluginLibrary, instanceName: String, host: any DeviceHost) {
        self.library = library
        self.instanceName = instanceName
        binding = HostBinding(host: host)
        serialised = !library.info.concurrent
        descriptor = library.fields
        ioCallback = descriptor.io
        pciConfigCallback = descriptor.pci_config
        sites = CrashSites(instance: instanceName, plugin: library.info.name)
        ioSite = sites[.io]
    }

    deinit { destroy() }

    /// Records a plugin's set_error message; the next failing call reports it.
    public func noteError(_ message: String) {
        errors.withLock { e in
            e.append(message)
            if e.count > Self.keptErrors { e.removeFirst(e.count - Self.keptErrors) }
        }
    }

    /// What the plugin said through set_error since the last call, consumed: the latest message
    /// leads, earlier ones (usually the host's detail) follow in parentheses.
    public func takeErrorReport() -> String? {
        let noted = errors.withLock { e in defer { e = [] }; return e }
        return noted.last.map { last in
            noted.count > 1 ? "\(last) (\(noted.dropLast().reversed().joined(separator: "; ")))" : last
        }
    }

    private func failure(_ operation: String, _ fallback: String) -> PluginDeviceError {
        PluginDeviceError(instance: instanceName, plugin: info.name, operation: operation,
                          reason: takeErrorReport() ?? fallback)
    }

    /// Forgets an error left over from an earlier call that succeeded anyway.
    private func clearError() { errors.withLock { $0 = [] } }

    /// One call into the plugin: serialised unless it is concurrent, and marked as `callback` for
    /// the crash guard (two thread-local stores).
    @inline(__always)
    private func serially<T>(_ callback: PluginCallback, _ body: () -> T) -> T {
        serially(sites[callback], body)
    }

    @inline(__always)
    private func serially<T>(_ site: UnsafePointer<ckvm_crash_site>, _ body: () -> T) -> T {
        guard serialised else {
            let previous = ckvm_crash_enter(site)
            defer { ckvm_crash_leave(previous) }
            return body()
        }
        return lock.withLock { _ in
            let previous = ckvm_crash_enter(site)
            defer { ckvm_crash_leave(previous) }
            return body()
        }
    }

    public func create(parameters: [ParameterValue], vcpuCount: UInt32) throws(PluginDeviceError) {
        guard let create = descriptor.create else { throw failure("create", "no create callback") }
        clearError()
        // C strings for names and string values, and groups' item arrays, must outlive the call only.
        var cStrings: [UnsafeMutablePointer<CChar>] = []
        var itemArrays: [UnsafeMutableBufferPointer<veneer_param_value>] = []
        func keep(_ s: String) -> UnsafePointer<CChar> {
            let utf8 = Array(s.utf8CString)
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
            p.initialize(from: utf8, count: utf8.count)
            cStrings.append(p)
            return UnsafePointer(p)
        }
        defer {
            cStrings.forEach { $0.deallocate() }
            itemArrays.forEach { $0.deallocate() }
        }
        func cValue(_ p: ParameterValue, _ kind: ParameterSchema.Kind?) -> veneer_param_value {
            var v = veneer_param_value()
            v.struct_size = UInt32(MemoryLayout<veneer_param_value>.size)
            v.name = keep(p.name)
            switch p.value {
            case .bool(let b): v.type = VENEER_PARAM_BOOL.rawValue; v.int_value = b ? 1 : 0
            case .int(let i): v.type = VENEER_PARAM_INT.rawValue; v.int_value = i
            case .string(let s):
                v.type = switch kind {
                case .choice?: VENEER_PARAM_CHOICE.rawValue
                case .path?: VENEER_PARAM_PATH.rawValue
                default: VENEER_PARAM_STRING.rawValue
                }
                v.string_value = keep(s)
            case .group(let tables):
                // Table-major, member order: validation produced every member of every table.
                v.type = VENEER_PARAM_GROUP.rawValue
                v.int_value = Int64(tables.count)
                let members: [ParameterSchema] = if case .group(_, _, let m)? = kind { m } else { [] }
                let flat = tables.flatMap { $0 }
                guard !flat.isEmpty else { break }
                let items = UnsafeMutableBufferPointer<veneer_param_value>.allocate(capacity: flat.count)
                itemArrays.append(items)
                for (i, item) in flat.enumerated() {
                    items.initializeElement(at: i, to: cValue(item, members.first { $0.name == item.name }?.kind))
                }
                v.items = UnsafePointer(items.baseAddress)
            }
            return v
        }
        let values: [veneer_param_value] = parameters.map { p in cValue(p, info.parameters.first { $0.name == p.name }?.kind) }
        let instance = keep(instanceName)
        let handle: OpaquePointer? = values.withUnsafeBufferPointer { buffer in
            var args = veneer_create_args()
            args.struct_size = UInt32(MemoryLayout<veneer_create_args>.size)
            args.param_count = UInt32(buffer.count)
            args.param_value_size = UInt32(MemoryLayout<veneer_param_value>.size)
            args.params = buffer.baseAddress
            args.instance_name = instance
            args.vcpu_count = vcpuCount
            return serially(.create) { create(HostServiceTable.api, binding.opaque, &args) }
        }
        guard let handle else { throw failure("create", "the plugin returned no device") }
        device = handle
    }

    private func lifecycle(_ callback: PluginCallback, _ call: (@convention(c) (OpaquePointer?) -> veneer_status)?) throws(PluginDeviceError) {
        guard let device, let call else { return }
        clearError()
        let status = serially(callback) { call(device) }
        guard status == .ok else { throw failure(callback.name, "status \(status)") }
    }

    public func reset() throws(PluginDeviceError) { try lifecycle(.reset, descriptor.reset) }
    public func start() throws(PluginDeviceError) { try lifecycle(.start, descriptor.start) }
    public func stop() throws(PluginDeviceError) { try lifecycle(.stop, descriptor.stop) }

    public func destroy() {
        guard let device else { return }
        let destroy = descriptor.destroy
        serially(.destroy) { destroy?(device) }
        self.device = nil
    }

    /// The exit path: no allocation, one lock.
    @inline(__always)
    public func io(region: UInt32, offset: UInt64, size: UInt32, flags: UInt32, data: inout UInt64) {
        guard let device, let ioCallback else { return }
        serially(ioSite) { ioCallback(device, region, offset, size, flags, &data) }
    }

    /// Whether the plugin has a pci_config callback (ABI 1.2).
    public var handlesPCIConfig: Bool { pciConfigCallback != nil }

    /// A configuration-space access for one of the instance's PCI functions (see `PCIBus`).
    public func pciConfig(function: UInt32, offset: UInt32, size: UInt32, flags: UInt32, data: inout UInt32) {
        guard let device, let pciConfigCallback else { return }
        serially(.pciConfig) { pciConfigCallback(device, function, offset, size, flags, &data) }
    }

    /// The first minor whose descriptor has hv_message and hv_event: in an older plugin's
    /// descriptor those bytes are reserved, and are never read whatever they hold.
    static let hyperVConnectionsMinor: UInt16 = 4
    private var hasHyperVCallbacks: Bool { info.abiMinor >= Self.hyperVConnectionsMinor }

    /// ABI 1.4: the guest posted to one of the instance's message connections; returns the
    /// hypercall status (invalid parameter when the plugin has no hv_message callback).
    public func hvMessage(connectionID: UInt32, vp: UInt32, messageType: UInt32, payload: [UInt8]) -> UInt16 {
        guard let device, hasHyperVCallbacks, let call = descriptor.hv_message else { return 0x0005 }
        let status = serially(.hvMessage) {
            payload.withUnsafeBufferPointer { call(device, connectionID, vp, messageType, $0.baseAddress, $0.count) }
        }
        return UInt16(truncatingIfNeeded: status)
    }

    /// ABI 1.4: the guest signalled one of the instance's event connections.
    public func hvEvent(connectionID: UInt32, vp: UInt32, flag: UInt32) {
        guard let device, hasHyperVCallbacks, let call = descriptor.hv_event else { return }
        serially(.hvEvent) { call(device, connectionID, vp, flag) }
    }

    /// The first minor whose descriptor has control and run_state.
    static let managementMinor: UInt16 = 8
    private var hasManagementCallbacks: Bool { info.abiMinor >= Self.managementMinor }

    /// ABI 1.8: a management request (a JSON object text) the device answers through
    /// control_reply with `request`; false when the plugin has no control callback (the caller
    /// answers "unsupported" itself).
    public func control(request: UInt64, json: String) -> Bool {
        guard let device, hasManagementCallbacks, let call = descriptor.control else { return false }
        let bytes = Array(json.utf8CString)
        serially(.control) { bytes.withUnsafeBufferPointer { b in b.baseAddress.map { call(device, request, $0, b.count - 1) } } }
        return true
    }

    /// ABI 1.8: the VM paused (VENEER_RUN_PAUSED) or resumed (VENEER_RUN_RESUMED).
    public func runStateChanged(_ state: UInt32) {
        guard let device, hasManagementCallbacks, let call = descriptor.run_state else { return }
        serially(.runState) { call(device, state) }
    }

    public func timerFired(token: UInt64) {
        guard let device, let timer = descriptor.timer else { return }
        serially(.timer) { timer(device, token) }
    }

    public func fdReady(token: UInt64, events: UInt32) {
        guard let device, let call = descriptor.fd_ready else { return }
        serially(.fdReady) { call(device, token, events) }
    }

    public func workPosted(token: UInt64) {
        guard let device, let work = descriptor.work else { return }
        serially(.work) { work(device, token) }
    }

    // MARK: ABI 1.1 VMBus events

    /// A VMBus event: under the instance's lock for a serialised plugin (as every callback), under
    /// the channel's own lock for a concurrent one.
    @inline(__always)
    private func channelEvent(_ channel: UInt32, _ callback: PluginCallback, _ body: () -> Void) {
        guard !serialised else { return serially(callback, body) }
        let channelLock = channelLocks.withLock { locks -> ChannelLock in
            if let existing = locks[channel] { return existing }
            let created = ChannelLock()
            locks[channel] = created
            return created
        }
        channelLock.mutex.withLock { _ in serially(callback, body) }
    }

    public func vmbusOpened(channel: UInt32, userData: [UInt8]) {
        guard let device, let call = descriptor.vmbus_opened else { return }
        userData.withUnsafeBufferPointer { buffer in channelEvent(channel, .vmbusOpened) { call(device, channel, buffer.baseAddress, buffer.count) } }
    }

    public func vmbusSignalled(channel: UInt32) {
        guard let device, let call = descriptor.vmbus_signalled else { return }
        channelEvent(channel, .vmbusSignalled) { call(device, channel) }
    }

    public func vmbusClosed(channel: UInt32) {
        guard let device, let call = descriptor.vmbus_closed else { return }
        channelEvent(channel, .vmbusClosed) { call(device, channel) }
    }

    public static let maxStateBytes = 64 << 20

    /// The device state and the version it was written with.
    public func save() throws(PluginDeviceError) -> (version: UInt32, bytes: [UInt8]) {
        guard let device, let save = descriptor.save else { return (info.stateVersion, []) }
        clearError()
        var needed = 0
        let probe = serially(.save) { save(device, nil, 0, &needed) }
        guard probe == .ok || probe == veneer_status(VENEER_ENOSPC) else { throw failure("save", "status \(probe)") }
        guard needed <= Self.maxStateBytes else { throw failure("save", "state of \(needed) bytes exceeds \(Self.maxStateBytes)") }
        var bytes = [UInt8](repeating: 0, count: needed)
        var length = 0
        let status = bytes.withUnsafeMutableBufferPointer { buffer in
            serially(.save) { save(device, buffer.baseAddress, buffer.count, &length) }
        }
        guard status == .ok, length <= needed else { throw failure("save", "status \(status), \(length) bytes") }
        return (info.stateVersion, Array(bytes.prefix(length)))
    }

    public func load(version: UInt32, bytes: [UInt8]) throws(PluginDeviceError) {
        guard let device, let load = descriptor.load else { return }
        clearError()
        let status = bytes.withUnsafeBufferPointer { buffer in serially(.load) { load(device, version, buffer.baseAddress, buffer.count) } }
        guard status == .ok else { throw failure("load", "status \(status)") }
    }
}
