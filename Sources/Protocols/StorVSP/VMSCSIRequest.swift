/// The SCSI request block inside an EXECUTE_SRB packet (offsets relative to the union, i.e. add 12
/// for the packet). Win8 and later use the long form (0x34 bytes, 20 sense bytes); older versions
/// end at 0x24 with 18 sense bytes. The CDB and the sense data share the same 20 bytes: the guest
/// writes a CDB there, the host answers with sense data.
public struct VMSCSIRequest: Sendable, Equatable {
    public static let shortSize = 0x24
    public static let longSize = 0x34
    public static let shortSenseSize = 0x12
    public static let longSenseSize = 0x14
    /// CDBs longer than this do not fit the request block.
    public static let maxCDBLength = 16

    /// Field offsets, checked by the layout tests.
    public enum Offset {
        public static let length = 0, srbStatus = 2, scsiStatus = 3, portNumber = 4, pathID = 5
        public static let targetID = 6, lun = 7, cdbLength = 8, senseInfoLength = 9, dataIn = 10
        public static let dataTransferLength = 12, cdbOrSense = 16, reserve = 36, queueTag = 38
        public static let queueAction = 39, srbFlags = 40, timeOutValue = 44, queueSortKey = 48
    }

    /// `data_in`: the direction of the data phase, from the guest's point of view.
    public enum DataDirection: UInt8, Sendable {
        /// To the device (a write).
        case write = 0
        /// From the device (a read).
        case read = 1
        case none = 2
    }

    public var length: UInt16
    public var srbStatus: UInt8
    public var scsiStatus: UInt8
    public var portNumber: UInt8
    public var pathID: UInt8
    public var targetID: UInt8
    public var lun: UInt8
    public var cdbLength: UInt8
    public var senseInfoLength: UInt8
    /// Raw: guests may send values outside `DataDirection`.
    public var dataIn: UInt8
    public var dataTransferLength: UInt32
    /// The CDB (guest → host) or sense data (host → guest): always 20 bytes here.
    public var cdbOrSense: [UInt8]
    // Win8 extension.
    public var reserve: UInt16
    public var queueTag: UInt8
    public var queueAction: UInt8
    public var srbFlags: UInt32
    public var timeOutValue: UInt32
    public var queueSortKey: UInt32

    public init(length: UInt16 = UInt16(VMSCSIRequest.longSize), srbStatus: UInt8 = 0, scsiStatus: UInt8 = 0, portNumber: UInt8 = 0,
                pathID: UInt8 = 0, targetID: UInt8 = 0, lun: UInt8 = 0, cdbLength: UInt8 = 0, senseInfoLength: UInt8 = 0,
                dataIn: UInt8 = DataDirection.none.rawValue, dataTransferLength: UInt32 = 0, cdbOrSense: [UInt8] = [],
                reserve: UInt16 = 0, queueTag: UInt8 = 0, queueAction: UInt8 = 0, srbFlags: UInt32 = 0,
                timeOutValue: UInt32 = 0, queueSortKey: UInt32 = 0) {
        self.length = length
        self.srbStatus = srbStatus
        self.scsiStatus = scsiStatus
        self.portNumber = portNumber
        self.pathID = pathID
        self.targetID = targetID
        self.lun = lun
        self.cdbLength = cdbLength
        self.senseInfoLength = senseInfoLength
        self.dataIn = dataIn
        self.dataTransferLength = dataTransferLength
        self.cdbOrSense = Self.fit(cdbOrSense)
        self.reserve = reserve
        self.queueTag = queueTag
        self.queueAction = queueAction
        self.srbFlags = srbFlags
        self.timeOutValue = timeOutValue
        self.queueSortKey = queueSortKey
    }

    private static func fit(_ bytes: [UInt8]) -> [UInt8] {
        let head = Array(bytes.prefix(longSenseSize))
        return head + [UInt8](repeating: 0, count: longSenseSize - head.count)
    }

    public var direction: DataDirection? { DataDirection(rawValue: dataIn) }

    /// The CDB bytes the guest declared (nil when `cdb_length` is 0 or exceeds 16).
    public var cdb: [UInt8]? {
        guard cdbLength > 0, Int(cdbLength) <= Self.maxCDBLength else { return nil }
        return Array(cdbOrSense[0..<Int(cdbLength)])
    }

    /// Decodes the union of a packet; fields past `size` (the short form) read as zero.
    public init(union: [UInt8], size: Int) {
        let bytes = Array(union.prefix(size))
        self.init(length: bytes.le(UInt16.self, at: Offset.length), srbStatus: bytes.le(UInt8.self, at: Offset.srbStatus),
                  scsiStatus: bytes.le(UInt8.self, at: Offset.scsiStatus), portNumber: bytes.le(UInt8.self, at: Offset.portNumber),
                  pathID: bytes.le(UInt8.self, at: Offset.pathID), targetID: bytes.le(UInt8.self, at: Offset.targetID),
                  lun: bytes.le(UInt8.self, at: Offset.lun), cdbLength: bytes.le(UInt8.self, at: Offset.cdbLength),
                  senseInfoLength: bytes.le(UInt8.self, at: Offset.senseInfoLength), dataIn: bytes.le(UInt8.self, at: Offset.dataIn),
                  dataTransferLength: bytes.le(UInt32.self, at: Offset.dataTransferLength),
                  cdbOrSense: Array(bytes.dropFirst(Offset.cdbOrSense).prefix(Self.longSenseSize)),
                  reserve: bytes.le(UInt16.self, at: Offset.reserve), queueTag: bytes.le(UInt8.self, at: Offset.queueTag),
                  queueAction: bytes.le(UInt8.self, at: Offset.queueAction), srbFlags: bytes.le(UInt32.self, at: Offset.srbFlags),
                  timeOutValue: bytes.le(UInt32.self, at: Offset.timeOutValue), queueSortKey: bytes.le(UInt32.self, at: Offset.queueSortKey))
    }

    /// The wire bytes in the short or long form (`size` is `shortSize` or `longSize`).
    public func encode(size: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.longSize)
        bytes.putLE(length, at: Offset.length)
        bytes.putLE(srbStatus, at: Offset.srbStatus)
        bytes.putLE(scsiStatus, at: Offset.scsiStatus)
        bytes.putLE(portNumber, at: Offset.portNumber)
        bytes.putLE(pathID, at: Offset.pathID)
        bytes.putLE(targetID, at: Offset.targetID)
        bytes.putLE(lun, at: Offset.lun)
        bytes.putLE(cdbLength, at: Offset.cdbLength)
        bytes.putLE(senseInfoLength, at: Offset.senseInfoLength)
        bytes.putLE(dataIn, at: Offset.dataIn)
        bytes.putLE(dataTransferLength, at: Offset.dataTransferLength)
        let senseRoom = size >= Self.longSize ? Self.longSenseSize : Self.shortSenseSize
        for i in 0..<senseRoom { bytes[Offset.cdbOrSense + i] = cdbOrSense[i] }
        bytes.putLE(reserve, at: Offset.reserve)
        bytes.putLE(queueTag, at: Offset.queueTag)
        bytes.putLE(queueAction, at: Offset.queueAction)
        bytes.putLE(srbFlags, at: Offset.srbFlags)
        bytes.putLE(timeOutValue, at: Offset.timeOutValue)
        bytes.putLE(queueSortKey, at: Offset.queueSortKey)
        return Array(bytes.prefix(size >= Self.longSize ? Self.longSize : Self.shortSize))
    }
}
