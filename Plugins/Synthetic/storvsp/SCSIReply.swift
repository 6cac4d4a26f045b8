import SCSIProtocol
import StorVSPProtocol

/// What a command ends with: the SRB and SCSI status, the sense data of a CHECK CONDITION, and
/// the data-in bytes (already cut to the allocation length).
struct SCSIReply: Sendable, Equatable {
    var srbStatus: SRBStatus
    var scsiStatus: SCSIStatus
    var sense: SenseData?
    /// Data-in bytes to copy to the guest (empty for data-out and no-data commands).
    var data: [UInt8]
    /// The bytes the command moved (reported back in data_transfer_length).
    var transferred: Int

    static func good(data: [UInt8] = [], transferred: Int? = nil) -> SCSIReply {
        SCSIReply(srbStatus: .success, scsiStatus: .good, sense: nil, data: data, transferred: transferred ?? data.count)
    }

    /// CHECK CONDITION with sense: the SRB says "error, autosense valid"; nothing was moved.
    static func check(_ key: SenseKey, _ additional: AdditionalSense, information: UInt32? = nil) -> SCSIReply {
        SCSIReply(srbStatus: .error, scsiStatus: .checkCondition, sense: SenseData(key, additional, information: information),
                  data: [], transferred: 0)
    }

    static func check(_ sense: SenseData) -> SCSIReply { check(sense.key, sense.additional, information: sense.information) }

    /// A request the VSP refused before any target saw it (no sense data).
    static func srb(_ status: SRBStatus) -> SCSIReply {
        SCSIReply(srbStatus: status, scsiStatus: .good, sense: nil, data: [], transferred: 0)
    }

    /// Data-in of `bytes`, cut to what the guest allocated (CDB) and described (buffer).
    static func dataIn(_ bytes: [UInt8], allocation: Int, buffer: Int) -> SCSIReply {
        let count = max(0, min(bytes.count, allocation, buffer))
        return .good(data: Array(bytes.prefix(count)))
    }
}

/// Disk work a command needs, at byte offsets of the LUN. Reads and writes name the part of the
/// guest's data buffer they use (`bufferOffset`, `length`).
struct DiskWork: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case read
        case write(fua: Bool)
        case flush
        case discard
        case writeZeroes
    }
    var kind: Kind
    var offset: UInt64
    var length: UInt64
    var bufferOffset: Int = 0
}

/// The disk side of a command: the work, and how to describe its outcome.
struct DiskPlan: Sendable, Equatable {
    var work: [DiskWork]
    /// Bytes reported as transferred when all the work succeeds.
    var transferred: Int
    /// First LBA (for the INFORMATION field of a medium error).
    var lba: UInt64
    var isRead: Bool
}

/// Either an answer now, or disk work first.
enum TargetPlan: Sendable, Equatable {
    case reply(SCSIReply)
    case disk(DiskPlan)
}
