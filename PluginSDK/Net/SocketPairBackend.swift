#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A switch without a kernel: each queue of a port is one end of a SOCK_SEQPACKET socketpair
/// (one frame per datagram, vnet header first, as on a TAP) and the other end is the "wire" the
/// test reads and writes. For netvsp's unit tests and benchmarks that must not need CAP_NET_ADMIN.
public final class SocketPairBackend: NetworkBackend {
    private let attached = Mutex<[String: SocketPairPort]>([:])

    public init() {}

    public func attach(_ spec: PortSpec) throws(NetworkError) -> any NetworkPort {
        try attachPair(spec)
    }

    /// `attach` with the concrete port, whose `wireFDs` the caller drives.
    public func attachPair(_ spec: PortSpec) throws(NetworkError) -> SocketPairPort {
        guard (1...LinuxBridgeBackend.maximumQueues).contains(spec.queues) else {
            throw NetworkError("port '\(spec.interfaceName)': \(spec.queues) queues; a port has 1 to \(LinuxBridgeBackend.maximumQueues)")
        }
        var queues: [Int32] = []
        var wires: [Int32] = []
        for queue in 0..<spec.queues {
            var pair: [Int32] = [-1, -1]
            let type = Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
            guard socketpair(AF_UNIX, type, 0, &pair) == 0 else {
                let code = errno
                for fd in queues + wires { close(fd) }
                throw NetworkError("port '\(spec.interfaceName)': socketpair for queue \(queue): \(errnoText(code))")
            }
            queues.append(pair[0])
            wires.append(pair[1])
        }
        let port = SocketPairPort(spec: spec, queueFDs: queues, wireFDs: wires)
        attached.withLock { $0[spec.interfaceName] = port }
        return port
    }

    /// The port attached under `interfaceName`, for a test that did not keep it.
    public func port(named interfaceName: String) -> SocketPairPort? {
        attached.withLock { $0[interfaceName] }
    }
}

public final class SocketPairPort: NetworkPort {
    public let spec: PortSpec
    private let state: Mutex<(queues: [Int32], wires: [Int32], linkUp: Bool)>

    init(spec: PortSpec, queueFDs: [Int32], wireFDs: [Int32]) {
        self.spec = spec
        state = Mutex((queueFDs, wireFDs, true))
    }

    deinit { close() }

    public var queueFDs: [Int32] { state.withLock { $0.queues } }
    /// The far end of each queue: what is written here arrives on the queue fd, and back.
    public var wireFDs: [Int32] { state.withLock { $0.wires } }

    public var linkUp: Bool {
        get { state.withLock { $0.linkUp } }
    }

    /// Simulates the cable: netvsp sees the change the next time it reads `linkUp`.
    public func setLinkUp(_ up: Bool) {
        state.withLock { $0.linkUp = up }
    }

    public func close() {
        let fds = state.withLock { s in
            defer { s.queues = []; s.wires = [] }
            return s.queues + s.wires
        }
        for fd in fds { Glibc.close(fd) }
    }
}
