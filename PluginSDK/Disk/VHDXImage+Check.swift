import VHDXFormat

extension VHDXImage {
    /// Problems `veneer disk check` reports beyond what stops an open: a damaged copy of a
    /// header or region table (the other one works), copies that disagree, a log that needs
    /// replay. One line each, without the path.
    public static func redundancyProblems(path: String) throws(DiskError) -> [String] {
        let file = try HostFile.open(path, writable: false)
        defer { file.close() }
        var problems: [String] = []
        var headers: [VHDXHeader] = []
        for (i, offset) in VHDXLayout.headerOffsets.enumerated() {
            let bytes = try file.read(at: offset, count: VHDXHeader.size)
            switch Result(catching: { () throws(VHDXFormatError) in try VHDXHeader.decode(bytes) }) {
            case .success(let h): headers.append(h)
            case .failure(let e): problems.append("header \(i + 1) is invalid (\(e.message)); the other one is used")
            }
        }
        if let current = headers.max(by: { $0.sequenceNumber < $1.sequenceNumber }), !current.logGUID.isZero {
            let log = VHDXLogReader(file: file, header: current, fileSize: try file.size().bytes)
            if let pending = try? log.activeSequence(), !pending.isEmpty {
                problems.append("the log holds \(pending.count) entries not yet replayed (`veneer disk check --repair` replays them)")
            }
        }
        var tables: [VHDXRegionTable] = []
        for (i, offset) in VHDXLayout.regionTableOffsets.enumerated() {
            let bytes = try file.read(at: offset, count: VHDXRegionTable.size)
            switch Result(catching: { () throws(VHDXFormatError) in try VHDXRegionTable.decode(bytes) }) {
            case .success(let t): tables.append(t)
            case .failure(let e): problems.append("region table \(i + 1) is invalid (\(e.message))")
            }
        }
        if tables.count == 2, tables[0] != tables[1] { problems.append("the two region tables differ") }
        return problems
    }

    /// The parents of a differencing disk, nearest first (empty for other types).
    public var parentChain: [VHDXImage] {
        var chain: [VHDXImage] = []
        var next = parent
        while let p = next { chain.append(p); next = p.parent }
        return chain
    }
}
