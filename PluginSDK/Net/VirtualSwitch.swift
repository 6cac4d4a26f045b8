#if canImport(Glibc)
import Glibc
#endif

/// Hyper-V's three kinds of virtual switch, as Linux bridges.
public enum SwitchType: String, Sendable, CaseIterable {
    /// VMs talk only to each other.
    case `private`
    /// VMs and the host (the bridge interface itself carries the host's address).
    case `internal`
    /// VMs, the host and the outside world through an enslaved uplink interface.
    case external
}

/// A Veneer switch as `list` reports it.
public struct SwitchInfo: Sendable, Equatable {
    public var name: String
    public var type: SwitchType
    public var uplink: String?
    /// The host's addresses on the bridge.
    public var addresses: [IPNetwork]
    /// VM ports (TAPs) and anything else enslaved besides the uplink.
    public var ports: [String]
    public var vlanFiltering: Bool
    public var up: Bool
}

/// Veneer marks its bridges with IFLA_IFALIAS "veneer-switch type=T[ uplink=IF]", so `list` and
/// `delete` never touch a bridge someone else made.
public struct SwitchMarker: Sendable, Equatable {
    public static let prefix = "veneer-switch"

    public var type: SwitchType
    public var uplink: String?

    public init(type: SwitchType, uplink: String? = nil) {
        self.type = type
        self.uplink = uplink
    }

    public var alias: String {
        var text = "\(Self.prefix) type=\(type.rawValue)"
        if let uplink { text += " uplink=\(uplink)" }
        return text
    }

    /// Nil for an alias that is not Veneer's.
    public init?(alias: String) {
        let words = alias.split(separator: " ")
        guard words.first == Substring(Self.prefix) else { return nil }
        var type: SwitchType?
        var uplink: String?
        for word in words.dropFirst() {
            let pair = word.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            switch pair[0] {
            case "type": type = SwitchType(rawValue: String(pair[1]))
            case "uplink": uplink = String(pair[1])
            default: continue
            }
        }
        guard let type else { return nil }
        self.init(type: type, uplink: uplink)
    }
}

/// Why a switch operation failed, for callers that act on the reason (`veneer switch` picks its
/// exit status from it), with the message that names what and where.
public struct SwitchError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A bad name, address, or option for the switch type.
        case invalid
        /// The switch, or the uplink, does not exist.
        case notFound
        /// The switch already exists.
        case exists
        /// An interface of that name exists and is not a Veneer switch.
        case notVeneers
        /// The uplink belongs to another bridge, or VMs are still on the switch.
        case inUse
        /// The process lacks CAP_NET_ADMIN.
        case notPermitted
        /// The kernel refused for another reason.
        case failed
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    init(_ failure: NetlinkFailure) {
        let kind: Kind = switch failure.errno {
        case EPERM, EACCES: .notPermitted
        case EEXIST: .exists
        case ENODEV: .notFound
        default: .failed
        }
        self.init(kind, failure.description)
    }

    public var description: String { message }
}
