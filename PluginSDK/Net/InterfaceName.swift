/// Linux interface names, as Veneer accepts them for switches and TAP ports: 1 to 15 bytes
/// (IFNAMSIZ less the NUL) of letters, digits, '-', '_' and '.', not "." or "..". The kernel
/// allows more (anything but '/', ':' and whitespace); the narrower set keeps names safe in
/// paths, logs and shells.
public enum InterfaceName {
    public static let maximumLength = 15

    public static func validate(_ name: String, role: String) throws(NetworkError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty else { throw NetworkError("\(role) name is empty") }
        guard bytes.count <= maximumLength else {
            throw NetworkError("\(role) name '\(name)' is \(bytes.count) bytes; Linux interface names are at most \(maximumLength)")
        }
        guard name != "." && name != ".." else { throw NetworkError("\(role) name '\(name)' is not a usable interface name") }
        for byte in bytes {
            let ok = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == 0x2d || byte == 0x5f || byte == 0x2e
            guard ok else {
                throw NetworkError("\(role) name '\(name)' has a character other than letters, digits, '-', '_' and '.'")
            }
        }
    }
}
