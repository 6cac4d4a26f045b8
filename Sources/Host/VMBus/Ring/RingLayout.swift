import VMBusProtocol

/// Where one ring buffer lives in guest memory: the control page, then data pages that need not
/// be physically contiguous. Byte offsets into the data area wrap at `dataSize`; every access
/// here is bounds-checked against it, so no guest index can reach outside the ring's own pages.
public struct RingLayout: Sendable, Equatable {
    public static let pageSize = 4096

    public let controlAddress: UInt64
    public let dataPFNs: [UInt64]
    public let dataSize: UInt32

    /// From the ring's PFNs: control page first. Needs at least one data page, and every page
    /// must be guest RAM (checked by the caller that built the GPADL).
    public init?(pfns: ArraySlice<UInt64>) {
        guard let control = pfns.first, pfns.count >= 2, control <= UInt64.max >> 12,
              pfns.allSatisfy({ $0 <= UInt64.max >> 12 }),
              let size = UInt32(exactly: (pfns.count - 1) * Self.pageSize)
        else { return nil }
        controlAddress = control << 12
        dataPFNs = Array(pfns.dropFirst())
        dataSize = size
    }

    /// Copies `count` bytes starting at data offset `offset`, wrapping at the end of the data area.
    func read(at offset: UInt32, count: Int, from memory: any GuestMemoryAccess) throws(RingError) -> [UInt8] {
        guard offset < dataSize, count >= 0, count <= Int(dataSize) else {
            throw .corrupt("read of \(count) bytes at \(offset) in a \(dataSize)-byte ring")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        var position = Int(offset), left = count
        while left > 0 {
            if position == Int(dataSize) { position = 0 }
            let (address, chunk) = span(at: position, limit: left)
            do throws(GuestMemoryError) {
                bytes += try memory.readBytes(address, count: chunk)
            } catch {
                throw .memory(error)
            }
            position += chunk
            left -= chunk
        }
        return bytes
    }

    /// Writes `bytes` starting at data offset `offset`, wrapping at the end of the data area.
    func write(_ bytes: [UInt8], at offset: UInt32, to memory: any GuestMemoryAccess) throws(RingError) {
        guard offset < dataSize, bytes.count <= Int(dataSize) else {
            throw .corrupt("write of \(bytes.count) bytes at \(offset) in a \(dataSize)-byte ring")
        }
        var position = Int(offset), done = 0
        while done < bytes.count {
            if position == Int(dataSize) { position = 0 }
            let (address, chunk) = span(at: position, limit: bytes.count - done)
            do throws(GuestMemoryError) {
                try memory.writeBytes(bytes[done..<done + chunk], at: address)
            } catch {
                throw .memory(error)
            }
            position += chunk
            done += chunk
        }
    }

    /// The guest address of data offset `position` and how many bytes (at most `limit`) continue
    /// contiguously from there: to the end of its run of physically adjacent pages.
    private func span(at position: Int, limit: Int) -> (UInt64, Int) {
        let first = position / Self.pageSize
        var last = first
        while last + 1 < dataPFNs.count, dataPFNs[last + 1] == dataPFNs[last] &+ 1,
              (last + 1) * Self.pageSize < position + limit {
            last += 1
        }
        let address = dataPFNs[first] << 12 + UInt64(position % Self.pageSize)
        return (address, min(limit, (last + 1) * Self.pageSize - position))
    }

    /// Reads a control-page field.
    func control(_ fieldOffset: Int, from memory: any GuestMemoryAccess) throws(RingError) -> UInt32 {
        do throws(GuestMemoryError) {
            return try memory.readUInt32(controlAddress + UInt64(fieldOffset))
        } catch {
            throw .memory(error)
        }
    }

    func setControl(_ fieldOffset: Int, _ value: UInt32, in memory: any GuestMemoryAccess) throws(RingError) {
        do throws(GuestMemoryError) {
            try memory.writeUInt32(value, at: controlAddress + UInt64(fieldOffset))
        } catch {
            throw .memory(error)
        }
    }

    /// A ring index as the guest left it: inside the data area and 8-byte aligned, or corrupt.
    func validIndex(_ value: UInt32, _ name: String) throws(RingError) -> UInt32 {
        guard value < dataSize, value % 8 == 0 else {
            throw .corrupt("\(name) \(value) outside a \(dataSize)-byte data area or unaligned")
        }
        return value
    }

    /// Bytes between a read index and a write index: what the reader may consume.
    func used(read: UInt32, write: UInt32) -> UInt32 {
        write >= read ? write - read : dataSize - read + write
    }
}
