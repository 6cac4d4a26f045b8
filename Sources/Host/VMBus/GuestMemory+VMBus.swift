/// Guest RAM as VMBus sees it: every access goes through `GuestMemory`'s own bounds checks.
extension GuestMemory: GuestMemoryAccess {
    public func isRAM(_ address: UInt64, length: UInt64) -> Bool {
        guard length > 0, let (backing, _) = locate(address, length) else { return false }
        return backing.region.kind == .ram
    }

    public func readBytes(_ address: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8] {
        try bytes(address, count: count)
    }

    public func writeBytes(_ bytes: ArraySlice<UInt8>, at address: UInt64) throws(GuestMemoryError) {
        let outcome: Result<Void, GuestMemoryError> = bytes.withUnsafeBytes { buffer in
            do throws(GuestMemoryError) {
                try write(address, from: buffer)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try outcome.get()
    }

    public func readUInt32(_ address: UInt64) throws(GuestMemoryError) -> UInt32 {
        try readValue(address, as: UInt32.self)
    }

    public func writeUInt32(_ value: UInt32, at address: UInt64) throws(GuestMemoryError) {
        try writeValue(value, at: address)
    }
}
