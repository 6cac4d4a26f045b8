import VHDXFormat

/// The on-disk formats Veneer opens.
public enum DiskFormat: String, Sendable, CaseIterable {
    case raw, vhdx

    /// VHDX if the file starts with the "vhdxfile" signature, raw otherwise.
    public static func detect(path: String) throws(DiskError) -> DiskFormat {
        let file = try HostFile.open(path, writable: false)
        defer { file.close() }
        let head = try file.read(at: 0, count: 8)
        return head.u64(at: 0) == VHDXFileIdentifier.signature ? .vhdx : .raw
    }
}

/// Opens an image. `format` nil detects it by signature. Block sizes override raw's defaults
/// (512 logical, 4096 physical); for a VHDX they must match what the file says.
public func openDiskImage(path: String, format: DiskFormat?, readOnly: Bool,
                          logicalBlockSize: UInt32? = nil, physicalBlockSize: UInt32? = nil) throws(DiskError) -> any DiskImage {
    let detected: DiskFormat
    if let format { detected = format } else { detected = try DiskFormat.detect(path: path) }
    switch detected {
    case .raw:
        return try RawImage.open(path: path, readOnly: readOnly, logicalBlockSize: logicalBlockSize, physicalBlockSize: physicalBlockSize)
    case .vhdx:
        let image = try VHDXImage.open(path: path, readOnly: readOnly)
        if let l = logicalBlockSize, l != image.geometry.logicalBlockSize {
            throw DiskError(.invalidRequest, path: path, "logical block size \(l) asked for, but the VHDX has \(image.geometry.logicalBlockSize)-byte sectors")
        }
        if let p = physicalBlockSize, p != image.geometry.physicalBlockSize {
            throw DiskError(.invalidRequest, path: path, "physical block size \(p) asked for, but the VHDX says \(image.geometry.physicalBlockSize)")
        }
        return image
    }
}
