import VeneerPluginABI

/// A device instance written in Swift. The SDK turns a type conforming to this protocol into a
/// plugin that speaks the C ABI (see `PluginExport`). Every method is called with the instance's
/// lock held unless the definition is declared concurrent (`PluginDefinition.concurrent`), so
/// instances need no locking of their own; a concurrent one must lock what its channels share.
public protocol VeneerDevice: AnyObject {
    /// Power-on state. Called once after creation and again on every VM reset.
    func reset()
    /// The VM starts running; timers may be armed and guest memory touched from now on.
    func start()
    /// The VM stops running.
    func stop()
    /// A guest access to one of the regions the device registered.
    func io(_ access: IOAccess, data: inout UInt64)
    func timerFired(token: UInt64)
    func fdReady(token: UInt64, events: FDEvents)
    func workPosted(token: UInt64)
    /// Writes the device state; `load` must accept exactly what this writes.
    func save(to state: inout StateWriter)
    func load(version: UInt32, from state: inout StateReader) throws(StateError)

    /// VMBus (synthetic devices): the guest opened, signalled or closed a channel this device
    /// offered with `HostServices.offerChannel`.
    func channelOpened(_ channel: UInt32, userData: [UInt8])
    func channelSignalled(_ channel: UInt32)
    func channelClosed(_ channel: UInt32)

    /// PCI (functions registered with `HostServices.registerPCIFunction`): an access to
    /// configuration space from 0x40 on (a read arrives with `data` preset to the registered
    /// capability bytes), or a header write the core applied (`access.isHeaderUpdate`; changing
    /// `data` then has no effect). Called on a vCPU thread.
    func pciConfig(_ access: PCIConfigAccess, data: inout UInt32)

    /// Hyper-V connections (claimed with `HostServices.connectHyperV`): the guest's HvPostMessage
    /// from VP `vp` to a message connection; returns the hypercall status it sees
    /// (`HyperVStatus`). Called on a vCPU thread.
    func hyperVMessage(connection: UInt32, vp: UInt32, messageType: UInt32, payload: [UInt8]) -> HyperVStatus
    /// The guest's HvSignalEvent from VP `vp` to an event connection, with its flag number.
    func hyperVEvent(connection: UInt32, vp: UInt32, flag: UInt32)

    /// A management request (ABI 1.8), on the event thread. Return the answer, or nil to answer
    /// later with `HostServices.reply(to: request.id, ...)` (e.g. once the guest has answered).
    /// The default takes no requests.
    func control(_ request: ControlRequest) -> ControlReply?
    /// The VM paused or resumed (ABI 1.8), on the event thread. Timers are frozen while paused.
    func runStateChanged(_ state: RunState)
}

/// The hypercall status an HvPostMessage to a device's connection returns to the guest.
public enum HyperVStatus: UInt32, Sendable {
    case success = 0x0000
    case invalidParameter = 0x0005
    /// The guest retries later (as Linux does for VMBus messages).
    case insufficientBuffers = 0x0013
}

extension VeneerDevice {
    public func start() {}
    public func stop() {}
    public func timerFired(token: UInt64) {}
    public func fdReady(token: UInt64, events: FDEvents) {}
    public func workPosted(token: UInt64) {}
    public func channelOpened(_ channel: UInt32, userData: [UInt8]) {}
    public func channelSignalled(_ channel: UInt32) {}
    public func channelClosed(_ channel: UInt32) {}
    public func pciConfig(_ access: PCIConfigAccess, data: inout UInt32) {}
    public func hyperVMessage(connection: UInt32, vp: UInt32, messageType: UInt32, payload: [UInt8]) -> HyperVStatus {
        .invalidParameter
    }
    public func hyperVEvent(connection: UInt32, vp: UInt32, flag: UInt32) {}
    public func control(_ request: ControlRequest) -> ControlReply? {
        .failure(.unsupported, message: "this device takes no management requests")
    }
    public func runStateChanged(_ state: RunState) {}
}

/// One guest access, as the host reports it.
public struct IOAccess: Sendable, Equatable {
    public var region: UInt32
    public var offset: UInt64
    public var size: Int
    public var isWrite: Bool
    public var isMMIO: Bool

    public init(region: UInt32, offset: UInt64, size: Int, isWrite: Bool, isMMIO: Bool = false) {
        self.region = region
        self.offset = offset
        self.size = size
        self.isWrite = isWrite
        self.isMMIO = isMMIO
    }

    /// The mask of the low `size` bytes of a value.
    public var mask: UInt64 { size >= 8 ? .max : (UInt64(1) << (UInt64(size) * 8)) - 1 }
}

public struct FDEvents: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let readable = FDEvents(rawValue: UInt32(VENEER_FD_READABLE))
    public static let writable = FDEvents(rawValue: UInt32(VENEER_FD_WRITABLE))
    public static let error = FDEvents(rawValue: UInt32(VENEER_FD_ERROR))
    public static let hangup = FDEvents(rawValue: UInt32(VENEER_FD_HANGUP))
}

public enum PluginKind: UInt32, Sendable {
    case emulated = 1
    case synthetic = 2
    case passthrough = 3
}

/// A parameter the plugin accepts; the host validates configs against these before calling `make`.
public struct ParameterSpec: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case bool
        case int(min: Int64, max: Int64)
        case string
        case choice([String])
        /// An integer that must be one of these (the host refuses any other).
        case intChoice([Int64])
        /// A host file: the host resolves a relative path against the config file's directory;
        /// "" and `words` (such as `none`, `stdout`) reach the plugin unchanged.
        case path(words: [String])
        /// A parameter group (ABI 1.7): an array of tables in the config, `[[device.NAME]]`, between
        /// `min` and `max` of them (at most 4096), each validated against `members` (at most 64,
        /// none a group) with their defaults filled in. Give a group `default: nil`: an absent
        /// group is zero tables, so `min > 0` makes it required. Read it with `Parameters.groups`.
        case group(min: Int, max: Int, members: [ParameterSpec])
    }

    public var name: String
    public var kind: Kind
    /// Textual default as a config would spell it (`"0x3f8"`, `"true"`); nil makes it required.
    public var defaultValue: String?
    public var doc: String

    public init(_ name: String, _ kind: Kind, default defaultValue: String?, doc: String) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.doc = doc
    }
}

/// Validated parameter values, one for every spec (defaults filled in by the host).
public struct Parameters: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case int(Int64)
        case string(String)
        /// A parameter group: one `Parameters` per table, in config order.
        case group([Parameters])
    }

    public var values: [String: Value]
    public init(values: [String: Value]) { self.values = values }

    public func int(_ name: String) -> Int64 {
        if case .int(let v)? = values[name] { return v }
        return 0
    }

    public func bool(_ name: String) -> Bool { int(name) != 0 }

    public func string(_ name: String) -> String {
        if case .string(let s)? = values[name] { return s }
        return ""
    }

    /// The tables of group `name`, each with every member present (defaults filled in), so
    /// `.int("lun")`, `.string("path")` and `.bool("read_only")` work on each. Empty when the
    /// config gave none.
    public func groups(_ name: String) -> [Parameters] {
        if case .group(let tables)? = values[name] { return tables }
        return []
    }
}

/// Why a device could not be created; the host prints it with the plugin and device names.
public struct PluginError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Everything the host needs to know about a plugin written with the SDK.
public struct PluginDefinition: Sendable {
    public var name: String
    public var version: String
    public var summary: String
    public var kind: PluginKind
    public var stateVersion: UInt32
    public var parameters: [ParameterSpec]
    /// VENEER_PLUGIN_CONCURRENT: the device does its own locking. The host may then call it from
    /// several threads at once; VMBus events of different channels may run in parallel (a
    /// storage or network VSP serving each sub-channel on its own), never two of one channel.
    /// Off by default: every callback holds the instance's lock.
    public var concurrent: Bool
    public var make: @Sendable (HostServices, Parameters, _ instanceName: String) throws(PluginError) -> any VeneerDevice

    public init(
        name: String, version: String, summary: String, kind: PluginKind = .emulated,
        stateVersion: UInt32 = 1, parameters: [ParameterSpec], concurrent: Bool = false,
        make: @escaping @Sendable (HostServices, Parameters, _ instanceName: String) throws(PluginError) -> any VeneerDevice
    ) {
        self.name = name
        self.version = version
        self.summary = summary
        self.kind = kind
        self.stateVersion = stateVersion
        self.parameters = parameters
        self.concurrent = concurrent
        self.make = make
    }
}
