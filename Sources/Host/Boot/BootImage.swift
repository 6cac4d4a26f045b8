/// What a VM boots, as its config names it: one of the supported formats, each with its loader.
public enum BootImage: Sendable, Equatable {
    case flat(FlatImage)
    case bzImage(BzImage)
    case pvh(PVHImage)
    case multiboot(MultibootImage)

    /// The config's `boot.format` for this image.
    public var format: String {
        switch self {
        case .flat: "flat"
        case .bzImage: "bzimage"
        case .pvh: "pvh"
        case .multiboot: "multiboot"
        }
    }

    /// The kernel or image file.
    public var path: String {
        switch self {
        case .flat(let f): f.path
        case .bzImage(let b): b.path
        case .pvh(let p): p.path
        case .multiboot(let m): m.path
        }
    }

    /// One line for `veneer check`.
    public var summary: String {
        switch self {
        case .flat(let f): "\(f.mode.rawValue)-mode flat image \(f.path)"
        case .bzImage(let b): "bzImage \(b.path)" + (b.initrd.map { " with initrd \($0)" } ?? "")
        case .pvh(let p): "PVH kernel \(p.path)" + (p.initrd.map { " with initrd \($0)" } ?? "")
        case .multiboot(let m): "multiboot kernel \(m.path)" + (m.modules.isEmpty ? "" : " with \(m.modules.count) module(s)")
        }
    }

    /// Loads the image (and its initrd or modules) into guest memory and returns how to enter it.
    /// `e820` is the memory map the guest is told about; by default the one `memory`'s layout implies.
    /// `rsdp` is where the ACPI tables start, for the protocols that pass it (Linux boot, PVH);
    /// others find it the way firmware-booted OSes do, by scanning the BIOS area.
    public func load(into memory: GuestMemory, e820: E820Map? = nil, rsdp: UInt64? = nil) throws(BootError) -> BootEntry {
        let map = e820 ?? E820Map(memoryMap: memory.map)
        switch self {
        case .flat(let f): return try f.load(into: memory, e820: map)
        case .bzImage(let b): return try b.load(into: memory, e820: map, rsdp: rsdp)
        case .pvh(let p): return try p.load(into: memory, e820: map, rsdp: rsdp)
        case .multiboot(let m): return try m.load(into: memory, e820: map)
        }
    }
}
