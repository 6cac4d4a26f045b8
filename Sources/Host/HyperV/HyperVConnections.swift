import Synchronization
import VMBusProtocol

/// What answers the guest's HvPostMessage / HvSignalEvent on a connection a device owns.
public protocol HyperVConnectionHandler: Sendable {
    /// Returns the hypercall status the guest sees.
    func message(connectionID: UInt32, vp: UInt32, messageType: UInt32, payload: [UInt8]) -> HypercallStatus
    func event(connectionID: UInt32, vp: UInt32, flag: UInt32)
}

public enum HyperVConnectionKind: UInt32, Sendable {
    case message = 1
    case event = 2
}

public enum HyperVConnectionError: Error, Equatable, CustomStringConvertible, Sendable {
    case outOfRange(UInt32)
    case taken(UInt32)

    public var description: String {
        switch self {
        case .outOfRange(let id): "connection id \(hex(id)) is outside 0x10000-0xffffff, the range plugins own"
        case .taken(let id): "connection id \(hex(id)) is already connected"
        }
    }
}

/// The message and event connections devices own (ABI 1.4), consulted before VMBus's own: the
/// id ranges do not overlap (VMBus uses 1, 4 and 0x2000-0x2fff), so no connection shadows another.
final class HyperVConnections: Sendable {
    private struct Tables {
        var messages: [UInt32: any HyperVConnectionHandler] = [:]
        var events: [UInt32: any HyperVConnectionHandler] = [:]
    }

    private let tables = Mutex(Tables())

    func connect(_ kind: HyperVConnectionKind, id: UInt32, handler: any HyperVConnectionHandler) throws(HyperVConnectionError) {
        guard HyperVConnectionRules.pluginConnectionIDs.contains(id) else { throw .outOfRange(id) }
        let added = tables.withLock { t -> Bool in
            switch kind {
            case .message:
                guard t.messages[id] == nil else { return false }
                t.messages[id] = handler
            case .event:
                guard t.events[id] == nil else { return false }
                t.events[id] = handler
            }
            return true
        }
        guard added else { throw .taken(id) }
    }

    func messageHandler(_ id: UInt32) -> (any HyperVConnectionHandler)? { tables.withLock { $0.messages[id & 0xFF_FFFF] } }
    func eventHandler(_ id: UInt32) -> (any HyperVConnectionHandler)? { tables.withLock { $0.events[id & 0xFF_FFFF] } }
}
