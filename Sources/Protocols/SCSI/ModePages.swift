/// Mode page codes this target reports.
public enum ModePage {
    public static let caching: UInt8 = 0x08
    public static let control: UInt8 = 0x0A
    public static let cdCapabilities: UInt8 = 0x2A
    public static let all: UInt8 = 0x3F

    /// Page 0x08 (SBC-3 6.4.5), 20 bytes. `changeable` gives the mask page (nothing changeable).
    public static func cachingPage(writeCacheEnabled: Bool, changeable: Bool = false) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: 20)
        page[0] = caching
        page[1] = 0x12
        if !changeable { page[2] = writeCacheEnabled ? 0x04 : 0 }   // WCE; RCD 0: read cache on
        return page
    }

    /// Page 0x0A (SPC-4 7.5.8), 12 bytes: fixed sense (D_SENSE 0), unrestricted reordering.
    public static func controlPage(changeable: Bool = false) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: 12)
        page[0] = control
        page[1] = 0x0A
        if !changeable {
            page[3] = 0x10            // queue algorithm modifier 1: unrestricted
            page.putBE(UInt16(0xFFFF), at: 8)  // busy timeout: unlimited
        }
        return page
    }

    /// Page 0x2A (MMC-6 7.6): a read-only DVD-ROM drive with a tray that can eject and lock.
    public static func cdCapabilitiesPage(changeable: Bool = false) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: 28)
        page[0] = cdCapabilities
        page[1] = 0x1A
        if !changeable {
            page[2] = 0x08 | 0x01     // reads DVD-ROM, CD-R media
            page[4] = 0x00
            page[5] = 0x00
            page[6] = 0x20 | 0x08 | 0x01   // tray loading mechanism, eject, lock
            page.putBE(UInt16(2), at: 10)   // number of volume levels
            page.putBE(UInt16(0), at: 12)   // buffer size (KiB)
        }
        return page
    }
}

/// The header and optional short block descriptor of MODE SENSE(6) and (10) data.
public struct ModeParameterList: Sendable, Equatable {
    public var mediumType: UInt8
    /// WP: the medium is write-protected.
    public var writeProtected: Bool
    /// DPOFUA: the target honours FUA (Linux then issues FUA writes).
    public var dpoFua: Bool
    /// Blocks and block length for the block descriptor, nil when none is returned.
    public var blockDescriptor: (blocks: UInt64, blockLength: UInt32)?
    public var pages: [UInt8]

    public init(mediumType: UInt8 = 0, writeProtected: Bool, dpoFua: Bool, blockDescriptor: (blocks: UInt64, blockLength: UInt32)?, pages: [UInt8]) {
        self.mediumType = mediumType
        self.writeProtected = writeProtected
        self.dpoFua = dpoFua
        self.blockDescriptor = blockDescriptor
        self.pages = pages
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.mediumType == b.mediumType && a.writeProtected == b.writeProtected && a.dpoFua == b.dpoFua
            && a.blockDescriptor?.blocks == b.blockDescriptor?.blocks && a.blockDescriptor?.blockLength == b.blockDescriptor?.blockLength
            && a.pages == b.pages
    }

    private var deviceSpecific: UInt8 { (writeProtected ? 0x80 : 0) | (dpoFua ? 0x10 : 0) }

    private var descriptorBytes: [UInt8] {
        guard let d = blockDescriptor else { return [] }
        var bytes = [UInt8](repeating: 0, count: 8)
        bytes.putBE24(UInt32(min(d.blocks, 0xFF_FFFF)), at: 1)   // 0xFFFFFF: too many to say here
        bytes.putBE24(d.blockLength & 0xFF_FFFF, at: 5)
        return bytes
    }

    /// MODE SENSE(6) data; the mode data length is capped at 255 (the pages are cut if needed).
    public func encode6() -> [UInt8] {
        let descriptor = descriptorBytes
        var bytes: [UInt8] = [0, mediumType, deviceSpecific, UInt8(descriptor.count)] + descriptor + pages
        if bytes.count > 256 { bytes = Array(bytes.prefix(256)) }
        bytes[0] = UInt8(bytes.count - 1)
        return bytes
    }

    /// MODE SENSE(10) data.
    public func encode10() -> [UInt8] {
        let descriptor = descriptorBytes
        var bytes: [UInt8] = [0, 0, mediumType, deviceSpecific, 0, 0, 0, 0] + descriptor + pages
        bytes.putBE(UInt16(clamping: bytes.count - 2), at: 0)
        bytes.putBE(UInt16(descriptor.count), at: 6)
        return bytes
    }
}
