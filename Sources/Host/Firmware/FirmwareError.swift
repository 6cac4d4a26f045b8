/// Why the firmware tables cannot be built or placed; says which input is at fault.
public enum FirmwareError: Error, CustomStringConvertible, Sendable, Equatable {
    case invalidVCPUCount(Int)
    case invalidDevice(String)
    case aml(AMLError)
    case invalidPlacement(String)
    case doesNotFit(region: String, needed: Int, available: Int)
    case guestMemory(GuestMemoryError)

    public var description: String {
        switch self {
        case .invalidVCPUCount(let n): "firmware tables: \(n) vCPUs is outside 1...\(FirmwareTables.maxVCPUs)"
        case .invalidDevice(let why): "firmware tables: \(why)"
        case .aml(let error): "firmware tables: \(error)"
        case .invalidPlacement(let why): "firmware tables placement: \(why)"
        case .doesNotFit(let region, let needed, let available):
            "firmware tables: \(needed) bytes do not fit in the \(available)-byte \(region) region"
        case .guestMemory(let error): "firmware tables: \(error)"
        }
    }
}
