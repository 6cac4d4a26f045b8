/// File-copy messages (icmsgtype 7, "guest services"), Linux include/uapi/linux/hyperv.h. Each
/// starts with `hv_fcopy_hdr` (36 bytes packed): `u32 operation; u8 service_id0[16]; u8
/// service_id1[16]`. Linux's `hv_fcopy_uio_daemon` reads the header and the operation's fields
/// and trusts the rest, so the host sends whole structures.
///
/// | operation | body after the header | size |
/// |---|---|---|
/// | START_FILE_COPY 0 | `u16 file_name[260]; u16 path_name[260]; u32 copy_flags; u64 file_size` | 1088 |
/// | WRITE_TO_FILE 1 | `u32 pad; u64 offset; u32 size; u8 data[6144]` | 6196 |
/// | COMPLETE_FCOPY 2, CANCEL_FCOPY 3 | — | 36 |
public enum FileCopyMessage: Hashable, Sendable {
    public static let headerSize = 36
    /// W_MAX_PATH: UTF-16 code units of a name or path field, NUL included.
    public static let pathUnits = 260
    /// DATA_FRAGMENT: the most data one WRITE_TO_FILE carries.
    public static let fragmentSize = 6 * 1024
    public static let startSize = headerSize + 2 * 2 * pathUnits + 4 + 8
    public static let writeSize = headerSize + 4 + 8 + 4 + fragmentSize

    case start(StartFileCopy)
    case write(offset: UInt64, data: [UInt8])
    case complete
    case cancel

    public var operation: FileCopyOperation {
        switch self {
        case .start: .start
        case .write: .write
        case .complete: .complete
        case .cancel: .cancel
        }
    }

    public func encode() -> [UInt8] {
        var w = ICByteWriter(capacity: Self.writeSize)
        w.u32(operation.rawValue)
        w.zeros(32)   // service ids: zero (Linux does not read them)
        switch self {
        case .start(let s):
            for field in [s.fileName, s.pathName] {
                for unit in field { w.u16(unit) }
                w.zeros(2 * (Self.pathUnits - field.count))
            }
            w.u32(s.flags.rawValue)
            w.u64(s.fileSize)
        case .write(let offset, let data):
            w.u32(0)
            w.u64(offset)
            w.u32(UInt32(min(data.count, Self.fragmentSize)))
            w.bytes(data.prefix(Self.fragmentSize))
            w.zeros(Self.fragmentSize - min(data.count, Self.fragmentSize))
        case .complete, .cancel:
            break
        }
        return w.bytes
    }

    public static func decode(_ bytes: ArraySlice<UInt8>) throws(ICWireError) -> FileCopyMessage {
        var r = ICByteReader(bytes, structure: "file-copy message")
        let operation = FileCopyOperation(rawValue: try r.u32())
        try r.skip(32)
        switch operation {
        case .start:
            try r.require(startSize - headerSize)
            func text() throws(ICWireError) -> [UInt16] {
                var units: [UInt16] = [], ended = false
                for _ in 0..<pathUnits {
                    let unit = try r.u16()
                    if unit == 0 { ended = true }
                    if !ended { units.append(unit) }
                }
                return Array(units.prefix(pathUnits - 1))
            }
            let name = try text(), path = try text()
            let flags = FileCopyFlags(rawValue: try r.u32())
            let size = try r.u64()
            guard let start = StartFileCopy(fileName: name, pathName: path, flags: flags, fileSize: size) else {
                throw .invalidField(structure: "file-copy start", field: "file_name", value: UInt64(name.count))
            }
            return .start(start)
        case .write:
            try r.require(writeSize - headerSize)
            try r.skip(4)
            let offset = try r.u64()
            let size = try r.u32()
            guard size <= UInt32(fragmentSize) else { throw .invalidField(structure: "file-copy write", field: "size", value: UInt64(size)) }
            return .write(offset: offset, data: Array(r.rest.prefix(Int(size))))
        case .complete: return .complete
        case .cancel: return .cancel
        default: throw .invalidField(structure: "file-copy message", field: "operation", value: UInt64(operation.rawValue))
        }
    }
}

/// `operation` of a file-copy message (Linux `enum hv_fcopy_op`).
public struct FileCopyOperation: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let start = FileCopyOperation(rawValue: 0)
    public static let write = FileCopyOperation(rawValue: 1)
    public static let complete = FileCopyOperation(rawValue: 2)
    public static let cancel = FileCopyOperation(rawValue: 3)

    private static let names = ["START_FILE_COPY", "WRITE_TO_FILE", "COMPLETE_FCOPY", "CANCEL_FCOPY"]
    public var description: String { rawValue < UInt32(Self.names.count) ? Self.names[Int(rawValue)] : "operation \(rawValue)" }
}

/// `copy_flags` of START_FILE_COPY.
public struct FileCopyFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// OVER_WRITE: replace an existing file (else the guest answers HV_ERROR_ALREADY_EXISTS).
    public static let overwrite = FileCopyFlags(rawValue: 0x1)
    /// CREATE_PATH: create missing directories of `path_name`.
    public static let createPath = FileCopyFlags(rawValue: 0x2)
}

/// START_FILE_COPY's fields: the guest writes `pathName/fileName`.
public struct StartFileCopy: Hashable, Sendable {
    public var fileName: [UInt16]
    public var pathName: [UInt16]
    public var flags: FileCopyFlags
    public var fileSize: UInt64

    /// Nil when a name does not fit its 260 units with a NUL, or the file name is empty.
    public init?(fileName: [UInt16], pathName: [UInt16], flags: FileCopyFlags, fileSize: UInt64) {
        guard !fileName.isEmpty, fileName.count < FileCopyMessage.pathUnits, pathName.count < FileCopyMessage.pathUnits,
              !fileName.contains(0), !pathName.contains(0) else { return nil }
        self.fileName = fileName
        self.pathName = pathName
        self.flags = flags
        self.fileSize = fileSize
    }
}

extension ICStatus {
    /// HV_ERROR_DISK_FULL: the guest's file system is full.
    public static let diskFull: UInt32 = 0x8007_0070
}
