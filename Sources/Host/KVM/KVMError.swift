/// Why KVM could not be used, or a KVM call failed.
public enum KVMError: Error, CustomStringConvertible, Sendable {
    case unavailable(path: String, reason: String)
    case apiVersion(Int32)
    case missingCapabilities([String])
    case call(SystemError)

    public var description: String {
        switch self {
        case .unavailable(let path, let reason): "cannot open \(path): \(reason) (is KVM enabled and are you allowed to use it?)"
        case .apiVersion(let v): "/dev/kvm speaks API version \(v); Veneer needs 12"
        case .missingCapabilities(let caps): "this KVM lacks capabilities Veneer relies on: \(caps.joined(separator: ", "))"
        case .call(let error): "KVM: \(error)"
        }
    }
}
