import VeneerPluginABI

/// The host's services for one device instance: a typed face over `veneer_host_api`.
///
/// `@unchecked Sendable`: it holds two pointers the host keeps valid and immutable for the
/// instance's lifetime; the ABI says which services may be called from which threads.
public struct HostServices: @unchecked Sendable {
    public let api: UnsafePointer<veneer_host_api>
    public let host: OpaquePointer

    public init(api: UnsafePointer<veneer_host_api>, host: OpaquePointer) {
        self.api = api
        self.host = host
    }

    public enum LogLevel: UInt32, Sendable {
        case error = 0, warning, info, debug
    }

    public func log(_ level: LogLevel, _ message: String) {
        api.pointee.log?(host, level.rawValue, message)
    }

    public func registerPortIO(region: UInt32, port: UInt16, length: UInt32) throws(PluginError) {
        try check(api.pointee.register_pio?(host, region, port, length), "register ports \(hex(port))+\(length)")
    }

    public func registerMMIO(region: UInt32, address: UInt64, length: UInt64) throws(PluginError) {
        try check(api.pointee.register_mmio?(host, region, address, length), "register MMIO \(hex(address))+\(length)")
    }

    public func unregisterRegion(_ region: UInt32) throws(PluginError) {
        try check(api.pointee.unregister_region?(host, region), "unregister region \(region)")
    }

    public func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(PluginError) {
        try check(api.pointee.mem_read?(host, address, buffer.baseAddress, UInt64(buffer.count)),
                  "read \(buffer.count) bytes of guest memory at \(hex(address))")
    }

    public func writeGuest(_ address: UInt64, from buffer: UnsafeRawBufferPointer) throws(PluginError) {
        try check(api.pointee.mem_write?(host, address, buffer.baseAddress, UInt64(buffer.count)),
                  "write \(buffer.count) bytes of guest memory at \(hex(address))")
    }

    public func setIRQ(line: UInt32, level: Bool) {
        _ = api.pointee.irq_set?(host, line, level ? 1 : 0)
    }

    public func sendMSI(address: UInt64, data: UInt32) {
        _ = api.pointee.msi_send?(host, address, data)
    }

    /// Monotonic nanoseconds (manual under the test harness).
    public var now: UInt64 { api.pointee.clock_ns?(host) ?? 0 }

    public func armTimer(token: UInt64, deadline: UInt64, period: UInt64 = 0) {
        _ = api.pointee.timer_arm?(host, token, deadline, period)
    }

    public func cancelTimer(token: UInt64) {
        _ = api.pointee.timer_cancel?(host, token)
    }

    public func watch(fd: Int32, events: FDEvents, token: UInt64) throws(PluginError) {
        try check(api.pointee.fd_watch?(host, fd, events.rawValue, token), "watch fd \(fd)")
    }

    public func unwatch(fd: Int32) {
        _ = api.pointee.fd_unwatch?(host, fd)
    }

    /// Thread-safe: runs `workPosted(token:)` on the instance's serialised context.
    public func postWork(token: UInt64) {
        _ = api.pointee.post_work?(host, token)
    }

    public enum StopReason: Sendable, Equatable {
        case powerOff
        case reset
        case exit(status: Int32)
        case error(String)
    }

    public func requestStop(_ reason: StopReason) {
        switch reason {
        case .powerOff: api.pointee.request_stop?(host, VENEER_STOP_POWEROFF.rawValue, 0)
        case .reset: api.pointee.request_stop?(host, VENEER_STOP_RESET.rawValue, 0)
        case .exit(let status): api.pointee.request_stop?(host, VENEER_STOP_EXIT.rawValue, status)
        case .error(let message):
            api.pointee.set_error?(host, message)
            api.pointee.request_stop?(host, VENEER_STOP_ERROR.rawValue, 1)
        }
    }

    private func check(_ status: veneer_status?, _ what: @autoclosure () -> String) throws(PluginError) {
        guard let status else { throw PluginError("the host does not offer the call to \(what())") }
        guard status == veneer_status(VENEER_OK) else { throw PluginError("cannot \(what()): \(statusName(status))") }
    }
}

public func statusName(_ status: veneer_status) -> String {
    switch status {
    case veneer_status(VENEER_OK): "ok"
    case veneer_status(VENEER_EINVAL): "invalid argument"
    case veneer_status(VENEER_ERANGE): "outside guest RAM"
    case veneer_status(VENEER_ENOMEM): "out of memory"
    case veneer_status(VENEER_EBUSY): "already in use"
    case veneer_status(VENEER_ENOTSUP): "not supported"
    case veneer_status(VENEER_EIO): "I/O error"
    case veneer_status(VENEER_ENOSPC): "buffer too small"
    case veneer_status(VENEER_ESTATE): "malformed state"
    default: "status \(status)"
    }
}

func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
