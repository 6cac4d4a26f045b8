import Synchronization
import VeneerPluginABI

/// PCI bus 0 of one VM: the core's host bridge at 00:00.0 and the functions plugins register,
/// one device number each (function 0). It answers configuration accesses (from a configuration
/// mechanism plugin such as `pci-host`), emulates every function's header (`PCIConfigHeader`),
/// passes the rest of configuration space to the owning plugin, and keeps each BAR's region
/// where the header says it decodes.
///
/// BAR placement rule: a BAR is mapped while its space is enabled, it is reachable and its range
/// is free. A BAR whose range is taken (RAM, another device, another BAR) stays unmapped, and is
/// retried whenever some BAR gives up space: the region that was there first keeps it, so a
/// guest cannot take a device's registers away by moving a BAR on top of them.
///
/// Locking: one mutex for the bus state. It is held while BAR regions are placed (which takes the
/// exit-path buses' write locks) but never while a plugin is called: configuration callbacks run
/// after it is dropped, so a plugin may use any host service from them.
public final class PCIBus: Sendable {
    public static let deviceCount = 32
    /// Bus, device and function of the host bridge (00:00.0).
    public static let hostBridge: UInt32 = 0

    /// A class, so the state lock's holder changes it in place: no copy-on-write of its arrays
    /// (and no allocation) on a configuration write. Touched only with the state lock held.
    final class Function {
        var header: PCIConfigHeader
        /// nil for the core's host bridge.
        let owner: (any PCIFunctionOwner)?
        /// Where each BAR decodes now.
        var mapped: [PCIWindow?] = Array(repeating: nil, count: PCIConfigHeader.barCount)
        /// The last window each BAR was refused, so a conflict is reported once, not on every retry.
        var refused: [PCIWindow?] = Array(repeating: nil, count: PCIConfigHeader.barCount)

        init(header: PCIConfigHeader, owner: (any PCIFunctionOwner)?) {
            self.header = header
            self.owner = owner
        }
    }

    struct State {
        /// Indexed by device number.
        var functions: [Function?] = Array(repeating: nil, count: PCIBus.deviceCount)
        /// Hosts that forward configuration accesses, and hosts that own functions: disjoint.
        var mechanisms: Set<ObjectIdentifier> = []
        var functionOwners: Set<ObjectIdentifier> = []
        var reports = 0
    }

    private let state: Mutex<State>
    private let report: @Sendable (String) -> Void

    /// `report` receives diagnostics the guest can trigger (BAR conflicts), rate-limited here.
    public init(report: @escaping @Sendable (String) -> Void = { _ in }) {
        var s = State()
        s.functions[0] = Function(header: .hostBridge(), owner: nil)
        state = Mutex(s)
        self.report = report
    }

    /// "00:03.0"
    public static func name(_ bdf: UInt32) -> String {
        func two(_ v: UInt32) -> String { v < 0x10 ? "0" + String(v, radix: 16) : String(v, radix: 16) }
        return "\(two((bdf >> 8) & 0xFF)):\(two((bdf >> 3) & 0x1F)).\(bdf & 7)"
    }

    // MARK: registration

    /// Puts a function on the bus for `owner`; returns its address (bus << 8 | device << 3).
    public func register(_ request: PCIFunctionRequest, owner: any PCIFunctionOwner) throws(PCIRegistrationError) -> UInt32 {
        let header = try PCIConfigHeader(validating: request, hasConfigCallback: owner.handlesPCIConfig)
        let id = ObjectIdentifier(owner)
        return try state.withLock { s throws(PCIRegistrationError) -> UInt32 in
            guard !s.mechanisms.contains(id) else {
                throw .busy("this instance forwards configuration accesses, so it cannot own PCI functions too")
            }
            let device: Int
            if request.slot != 0 {
                guard request.slot < Self.deviceCount else { throw .invalid("slot \(request.slot) is not a device number 1-31") }
                guard s.functions[Int(request.slot)] == nil else { throw .busy("slot \(request.slot) is taken") }
                device = Int(request.slot)
            } else {
                guard let free = (1..<Self.deviceCount).first(where: { s.functions[$0] == nil }) else {
                    throw .busy("all 31 device numbers of bus 0 are taken")
                }
                device = free
            }
            s.functions[device] = Function(header: header, owner: owner)
            s.functionOwners.insert(id)
            return UInt32(device) << 3
        }
    }

    /// Records that `caller` forwards configuration accesses; false if it owns functions (its
    /// callbacks would be re-entered from its own access).
    public func claimMechanism(_ caller: AnyObject) -> Bool {
        let id = ObjectIdentifier(caller)
        return state.withLock { s in
            guard !s.functionOwners.contains(id) else { return false }
            s.mechanisms.insert(id)
            return true
        }
    }

    /// Takes `owner`'s functions off the bus (their BARs unmapped) and forgets its roles, for a
    /// host that goes away while the bus lives on (the harness can share one bus).
    public func remove(owner: AnyObject) {
        let id = ObjectIdentifier(owner)
        state.withLock { s in
            for d in 0..<Self.deviceCount {
                guard let f = s.functions[d], let owner = f.owner, ObjectIdentifier(owner) == id else { continue }
                unmapAll(f)
                s.functions[d] = nil
            }
            s.mechanisms.remove(id)
            s.functionOwners.remove(id)
        }
    }

    /// Power-on state for every function: decoding off, BARs unassigned and unmapped.
    public func reset() {
        state.withLock { s in
            for d in 0..<Self.deviceCount {
                guard let f = s.functions[d] else { continue }
                f.header.reset()
                for slot in f.refused.indices { f.refused[slot] = nil }
                unmapAll(f)
            }
        }
    }

    // MARK: configuration accesses

    private enum Followup {
        case none
        case forward(any PCIFunctionOwner, flags: UInt32)
        case headerWritten(any PCIFunctionOwner, value: UInt32)
    }

    /// A configuration access of `size` (1, 2, 4) bytes at `offset` (0-0xFFF, a multiple of size)
    /// of function `bdf`. Absent functions read all ones and ignore writes; `.invalid` for a
    /// malformed access.
    public func access(bdf: UInt32, offset: UInt32, size: UInt32, isWrite: Bool, data: inout UInt32) -> veneer_status {
        guard size == 1 || size == 2 || size == 4, offset < 0x1000, offset % size == 0, bdf <= 0xFFFF else { return .invalid }
        let mask: UInt32 = size == 4 ? .max : (1 << (8 * size)) - 1
        let device = Int((bdf >> 3) & 0x1F)
        guard bdf >> 8 == 0, bdf & 7 == 0 else {
            if !isWrite { data = mask }
            return .ok
        }
        let shift = 8 * (offset % 4)
        let written = data & mask
        var value = mask
        let followup: Followup = state.withLock { s in
            guard let f = s.functions[device] else { return .none }
            if offset >= PCIConfigHeader.configBytes {
                value = 0  // conventional PCI: no extended configuration space
                return .none
            }
            if offset < PCIConfigHeader.headerBytes {
                let index = Int(offset / 4)
                guard isWrite else {
                    value = (f.header.readDword(index) >> shift) & mask
                    return .none
                }
                if f.header.writeDword(index, written << shift, byteMask: mask << shift) {
                    reconcile(&s, f, device: device)
                }
                guard let owner = f.owner, owner.handlesPCIConfig else { return .none }
                return .headerWritten(owner, value: (f.header.readDword(index) >> shift) & mask)
            }
            value = f.header.presetValue(offset: offset, size: size)
            guard let owner = f.owner, owner.handlesPCIConfig else { return .none }
            return .forward(owner, flags: isWrite ? UInt32(VENEER_IO_WRITE) : 0)
        }
        switch followup {
        case .none:
            break
        case .forward(let owner, let flags):
            if isWrite { value = written }
            owner.forwardPCIConfig(function: bdf, offset: offset, size: size, flags: flags, data: &value)
        case .headerWritten(let owner, var now):
            owner.forwardPCIConfig(function: bdf, offset: offset, size: size,
                                   flags: UInt32(VENEER_IO_WRITE) | UInt32(VENEER_PCI_HEADER_WRITTEN), data: &now)
        }
        if !isWrite { data = value & mask }
        return .ok
    }

    // MARK: BAR placement (with the state lock held)

    /// Brings `f`'s mappings in line with its header. If that gave up space, BARs of every
    /// function that were refused for lack of it get another chance.
    private func reconcile(_ s: inout State, _ f: Function, device: Int) {
        guard let owner = f.owner else { return }
        var freed = false
        for slot in 0..<PCIConfigHeader.barCount {
            guard let have = f.mapped[slot], let bar = f.header.bars[slot], have != f.header.decodeWindow(slot: slot) else { continue }
            owner.unmapBAR(region: bar.region)
            f.mapped[slot] = nil
            freed = true
        }
        if freed {
            for d in 0..<Self.deviceCount {
                if let other = s.functions[d] { place(&s, other, device: d) }
            }
        } else {
            place(&s, f, device: device)
        }
    }

    /// Maps every BAR of `f` (device number `device`) that should decode and is not mapped yet,
    /// where there is room.
    private func place(_ s: inout State, _ f: Function, device: Int) {
        guard let owner = f.owner else { return }
        for slot in 0..<PCIConfigHeader.barCount where f.mapped[slot] == nil {
            guard let bar = f.header.bars[slot], let want = f.header.decodeWindow(slot: slot) else { continue }
            if owner.mapBAR(region: bar.region, io: bar.isIO, base: want.base, length: want.length) {
                f.mapped[slot] = want
                f.refused[slot] = nil
            } else if f.refused[slot] != want {
                f.refused[slot] = want
                note(&s, "\(Self.name(UInt32(device) << 3)) BAR\(slot) at \(bar.isIO ? "port" : "address") \(hex(want.base))+\(hex(want.length)) "
                    + "overlaps memory or another device: left unmapped until the range is free")
            }
        }
    }

    private func unmapAll(_ f: Function) {
        guard let owner = f.owner else { return }
        for slot in 0..<PCIConfigHeader.barCount where f.mapped[slot] != nil {
            if let bar = f.header.bars[slot] { owner.unmapBAR(region: bar.region) }
            f.mapped[slot] = nil
        }
    }

    /// Guest-triggered diagnostics: the first 64, then every 1024th.
    private func note(_ s: inout State, _ message: String) {
        s.reports += 1
        if s.reports <= 64 || s.reports % 1024 == 0 {
            report(s.reports <= 64 ? message : "\(message) (\(s.reports) so far)")
        }
    }

    // MARK: inspection

    /// One function as the bus sees it, for diagnostics and tests.
    public struct FunctionSummary: Sendable, Equatable {
        public var bdf: UInt32
        public var vendorID: UInt16
        public var deviceID: UInt16
        public var classCode: UInt32
        public var command: UInt16
        /// Per BAR slot: where it decodes now, if anywhere.
        public var mapped: [(base: UInt64, length: UInt64)?]

        public static func == (a: FunctionSummary, b: FunctionSummary) -> Bool {
            a.bdf == b.bdf && a.vendorID == b.vendorID && a.deviceID == b.deviceID && a.classCode == b.classCode
                && a.command == b.command && a.mapped.map { $0?.base } == b.mapped.map { $0?.base }
                && a.mapped.map { $0?.length } == b.mapped.map { $0?.length }
        }
    }

    public var functions: [FunctionSummary] {
        state.withLock { s in
            s.functions.enumerated().compactMap { d, f in
                f.map {
                    FunctionSummary(bdf: UInt32(d) << 3, vendorID: $0.header.vendorID, deviceID: $0.header.deviceID,
                                    classCode: $0.header.classCode, command: $0.header.command,
                                    mapped: $0.mapped.map { $0.map { (base: $0.base, length: $0.length) } })
                }
            }
        }
    }
}
