/// The MMC answers of a read-only DVD-ROM drive holding one data track (an ISO image).
public enum MultiMediaData {
    /// GET CONFIGURATION profile numbers.
    public static let profileDVDROM: UInt16 = 0x0010
    public static let profileCDROM: UInt16 = 0x0008

    /// READ TOC/PMA/ATIP format 0 (TOC) or 1 (session info) for one data track of `blocks`
    /// 2048-byte sectors; nil for formats this drive does not implement.
    public static func tableOfContents(format: UInt8, msf: Bool, track: UInt8, blocks: UInt64) -> [UInt8]? {
        func address(_ lba: UInt64) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: 4)
            if msf {
                let frames = lba + 150
                bytes[1] = UInt8(clamping: frames / (75 * 60))
                bytes[2] = UInt8((frames / 75) % 60)
                bytes[3] = UInt8(frames % 75)
            } else {
                bytes.putBE(UInt32(clamping: lba), at: 0)
            }
            return bytes
        }
        // ADR 1 (position), control 4 (data track, copy not permitted).
        func descriptor(_ number: UInt8, _ lba: UInt64) -> [UInt8] { [0, 0x14, number, 0] + address(lba) }
        var body: [UInt8]
        switch format {
        case 0:
            // Track 1 then the lead-out (0xAA); a start track past 1 lists only the lead-out.
            guard track <= 1 || track == 0xAA else { return nil }
            body = (track <= 1 ? descriptor(1, 0) : []) + descriptor(0xAA, blocks)
        case 1:
            body = descriptor(1, 0)
        default:
            return nil
        }
        var header: [UInt8] = [0, 0, 1, 1]
        header.putBE(UInt16(body.count + 2), at: 0)
        return header + body
    }

    /// GET CONFIGURATION: the feature header (current profile) and the features at or after
    /// `startingFeature` (request type 0 or 1), or only that one (type 2).
    public static func configuration(requestType: UInt8, startingFeature: UInt16, mediumPresent: Bool) -> [UInt8] {
        let current = mediumPresent ? profileDVDROM : 0
        func feature(_ code: UInt16, version: UInt8, persistent: Bool, current: Bool, _ data: [UInt8]) -> (UInt16, [UInt8]) {
            var header: [UInt8] = [0, 0, (version << 2) | (persistent ? 0x02 : 0) | (current ? 0x01 : 0), UInt8(data.count)]
            header.putBE(code, at: 0)
            return (code, header + data)
        }
        var profiles: [UInt8] = []
        for (profile, isCurrent) in [(profileDVDROM, mediumPresent), (profileCDROM, false)] {
            var entry: [UInt8] = [0, 0, isCurrent ? 1 : 0, 0]
            entry.putBE(profile, at: 0)
            profiles += entry
        }
        var randomReadable = [UInt8](repeating: 0, count: 8)
        randomReadable.putBE(UInt32(2048), at: 0)
        randomReadable.putBE(UInt16(16), at: 4)   // blocking: 16 sectors per ECC block (DVD)
        let features: [(UInt16, [UInt8])] = [
            feature(0x0000, version: 0, persistent: true, current: true, profiles),
            feature(0x0001, version: 1, persistent: true, current: true, [0, 0, 0, 1, 0, 0, 0, 0]),   // core: SCSI
            feature(0x0003, version: 0, persistent: true, current: true, [0x29, 0, 0, 0]),           // removable: tray, eject, lock
            feature(0x0010, version: 0, persistent: false, current: mediumPresent, randomReadable),
            feature(0x001F, version: 0, persistent: false, current: mediumPresent, [0, 0, 0, 0]),    // DVD read
        ]
        let chosen: [(UInt16, [UInt8])]
        switch requestType {
        case 1: chosen = features.filter { $0.0 >= startingFeature && ($0.1[2] & 0x01 != 0) }
        case 2: chosen = features.filter { $0.0 == startingFeature }
        default: chosen = features.filter { $0.0 >= startingFeature }
        }
        let body = chosen.flatMap(\.1)
        var header = [UInt8](repeating: 0, count: 8)
        header.putBE(UInt32(4 + body.count), at: 0)
        header.putBE(current, at: 6)
        return header + body
    }

    /// GET EVENT STATUS NOTIFICATION (polled): the media class when requested (bit 4), else "no
    /// event available" (NEA) with the supported classes.
    public static func eventStatus(classRequest: UInt8, mediumPresent: Bool) -> [UInt8] {
        let supportedClasses: UInt8 = 0x10
        guard classRequest & supportedClasses != 0 else {
            return [0, 2, 0x80, supportedClasses]
        }
        // Media class: no change, medium present (bit 1), tray closed.
        return [0, 6, 0x04, supportedClasses, 0x00, mediumPresent ? 0x02 : 0x00, 0, 0]
    }
}
