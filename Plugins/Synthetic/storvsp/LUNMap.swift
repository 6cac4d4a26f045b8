import SCSIProtocol
import StorVSPProtocol

/// The LUNs of one controller by address. The guest addresses path (always 0 here), target
/// (0-1) and LUN (0-63); anything else is an absent LUN. Also answers what the target, not a
/// LUN, answers: REPORT LUNS and the commands sent to an absent LUN.
struct LUNMap: Sendable {
    static let targets = 2
    static let lunsPerTarget = 64

    private(set) var units: [LogicalUnit?] = Array(repeating: nil, count: LUNMap.targets * LUNMap.lunsPerTarget)

    init(_ units: [LogicalUnit] = []) {
        for unit in units { self.units[Self.key(target: unit.target, lun: unit.lun)] = unit }
    }

    static func key(target: Int, lun: Int) -> Int { target * lunsPerTarget + lun }

    static func isValid(target: Int, lun: Int) -> Bool {
        (0..<targets).contains(target) && (0..<lunsPerTarget).contains(lun)
    }

    func unit(path: UInt8, target: UInt8, lun: UInt8) -> LogicalUnit? {
        guard path == 0, Self.isValid(target: Int(target), lun: Int(lun)) else { return nil }
        return units[Self.key(target: Int(target), lun: Int(lun))]
    }

    func luns(target: Int) -> [Int] {
        guard (0..<Self.targets).contains(target) else { return [] }
        return (0..<Self.lunsPerTarget).filter { units[Self.key(target: target, lun: $0)] != nil }
    }

    var all: [LogicalUnit] { units.compactMap { $0 } }

    mutating func attach(_ unit: LogicalUnit) { units[Self.key(target: unit.target, lun: unit.lun)] = unit }

    @discardableResult
    mutating func detach(target: Int, lun: Int) -> LogicalUnit? {
        guard Self.isValid(target: target, lun: lun) else { return nil }
        let key = Self.key(target: target, lun: lun)
        defer { units[key] = nil }
        return units[key]
    }

    /// The plan for `command` sent to (path, target, lun); `unit` is who runs the disk work.
    func plan(_ command: SCSICommand, path: UInt8, target: UInt8, lun: UInt8, bufferLength: Int,
              parameterData: [UInt8]) -> (unit: LogicalUnit?, plan: TargetPlan) {
        if case .reportLUNs(let select, let allocation) = command {
            // SPC: an allocation length under 16 is an error; select 0 and 2 list every LUN,
            // 1 only well-known LUNs (there are none).
            guard allocation >= 16, select <= 2 else { return (nil, .reply(.check(.illegalRequest, .invalidFieldInCDB))) }
            let list = path == 0 && select != 1 ? luns(target: Int(target)) : []
            return (nil, .reply(.dataIn(ReportLUNsData.encode(luns: list), allocation: allocation, buffer: bufferLength)))
        }
        if let unit = unit(path: path, target: target, lun: lun) {
            return (unit, unit.plan(command, bufferLength: bufferLength, parameterData: parameterData))
        }
        switch command {
        case .inquiry(_, _, let allocation):
            // Qualifier 3: no LUN here. Linux masks INQUIRY errors, so this must be data.
            return (nil, .reply(.dataIn(StandardInquiryData.absentLUN(), allocation: allocation, buffer: bufferLength)))
        case .requestSense(let allocation, _):
            return (nil, .reply(.dataIn(SenseData(.illegalRequest, .logicalUnitNotSupported).encode(), allocation: allocation,
                                        buffer: bufferLength)))
        default:
            // Linux removes a LUN that answers INVALID_LUN (hot remove relies on it).
            return (nil, .reply(.srb(.invalidLUN)))
        }
    }
}
