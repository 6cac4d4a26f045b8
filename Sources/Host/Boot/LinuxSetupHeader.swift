/// The setup header of a Linux bzImage (Documentation/arch/x86/boot.rst), read from offset 0x1F1
/// and checked field by field: magic numbers, protocol version, the extent of the setup code and
/// of the header itself, and the load constraints a loader must honour.
struct LinuxSetupHeader {
    static let start: UInt64 = 0x1F1
    static let bootFlag: UInt16 = 0xAA55
    static let magic: UInt32 = 0x5372_6448            // "HdrS"
    /// 2.06: cmdline_size exists, so the command-line limit is the kernel's own.
    static let oldestVersion: UInt16 = 0x0206
    /// 2.12: xloadflags, and with it the 64-bit entry point.
    static let xloadflagsVersion: UInt16 = 0x020C
    static let loadedHigh: UInt8 = 0x01
    static let xlfKernel64: UInt16 = 0x0001
    static let defaultSetupSectors: UInt64 = 4

    let version: UInt16
    /// Offset in the file where the protected-mode kernel begins: (setup_sects + 1) * 512.
    let kernelOffset: UInt64
    /// One past the header's last byte: 0x202 + the jump's displacement byte at 0x201.
    let end: UInt64
    let loadflags: UInt8
    let initrdAddressMax: UInt32
    let relocatable: Bool
    let kernelAlignment: UInt32
    let cmdlineSize: UInt32
    let xloadflags: UInt16
    /// 2.10+: where a relocatable kernel would like to run, and the memory it needs from there.
    let preferredAddress: UInt64?
    let initSize: UInt32?
    let syssizeBytes: UInt64

    var supports64BitEntry: Bool { version >= Self.xloadflagsVersion && xloadflags & Self.xlfKernel64 != 0 }

    init(_ file: BootFile) throws(BootError) {
        let flag = try file.u16(0x1FE, "boot_flag")
        guard flag == Self.bootFlag else {
            throw file.error("boot_flag at 0x1fe is \(hex(flag)), not 0xaa55: not a Linux bzImage")
        }
        let header = try file.u32(0x202, "setup header magic")
        guard header == Self.magic else {
            throw file.error("no \"HdrS\" magic at 0x202 (found \(hex(header))): a kernel older than boot protocol 2.00, or not a Linux kernel")
        }
        version = try file.u16(0x206, "protocol version")
        guard version >= Self.oldestVersion else {
            throw file.error("boot protocol \(Self.versionText(version)) is older than 2.06, the oldest Veneer loads (no cmdline_size field)")
        }
        end = 0x202 + UInt64(try file.u8(0x201, "setup header length (jump displacement at 0x201)"))
        let needed: UInt64 = version >= 0x020A ? 0x264 : 0x23C
        guard end >= needed else {
            throw file.error("the setup header ends at \(hex(end)) (0x202 + byte at 0x201), short of \(hex(needed)) that protocol \(Self.versionText(version)) defines")
        }
        _ = try file.slice(Self.start, count: end - Self.start, "setup header")
        var sectors = UInt64(try file.u8(0x1F1, "setup_sects"))
        if sectors == 0 { sectors = Self.defaultSetupSectors }
        kernelOffset = (sectors + 1) * 512
        guard end <= kernelOffset else {
            throw file.error("the setup header (ends at \(hex(end))) runs past the setup code (\(sectors) sectors end at \(hex(kernelOffset)))")
        }
        guard kernelOffset < file.size else {
            throw file.error("truncated: setup_sects \(sectors) puts the protected-mode kernel at \(hex(kernelOffset)), at or past the end of the file (\(file.size) bytes)")
        }
        syssizeBytes = UInt64(try file.u32(0x1F4, "syssize")) * 16
        guard syssizeBytes <= file.size - kernelOffset else {
            throw file.error("truncated: syssize says the protected-mode kernel has \(syssizeBytes) bytes, the file holds \(file.size - kernelOffset) after the setup code")
        }
        loadflags = try file.u8(0x211, "loadflags")
        guard loadflags & Self.loadedHigh != 0 else {
            throw file.error("loadflags \(hex(loadflags)) lacks LOADED_HIGH: a zImage that loads at 0x10000 is not supported")
        }
        initrdAddressMax = try file.u32(0x22C, "initrd_addr_max")
        kernelAlignment = try file.u32(0x230, "kernel_alignment")
        relocatable = try file.u8(0x234, "relocatable_kernel") != 0
        xloadflags = try file.u16(0x236, "xloadflags")
        cmdlineSize = try file.u32(0x238, "cmdline_size")
        if relocatable {
            guard kernelAlignment.nonzeroBitCount == 1, (0x1000...0x4000_0000).contains(kernelAlignment) else {
                throw file.error("relocatable kernel with kernel_alignment \(hex(kernelAlignment)): not a power of two between 4 KiB and 1 GiB")
            }
        }
        if version >= 0x020A {
            preferredAddress = try file.u64(0x258, "pref_address")
            initSize = try file.u32(0x260, "init_size")
        } else {
            preferredAddress = nil
            initSize = nil
        }
    }

    /// "2.06": minor versions are written with two digits.
    static func versionText(_ v: UInt16) -> String {
        let minor = v & 0xFF
        return "\(v >> 8).\(minor < 10 ? "0" : "")\(minor)"
    }
}
