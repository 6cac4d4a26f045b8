/// The parts of an x86 ELF executable (ELF32 or ELF64, little endian) a boot loader needs: entry
/// point, program headers and the notes in PT_NOTE segments. Shared by the PVH and multiboot
/// loaders. Every offset, size and count in the file is checked before it is used.
struct ELFImage {
    enum Class: Equatable {
        case elf32, elf64
    }

    struct ProgramHeader: Equatable {
        let index: Int
        let type: UInt32
        let offset: UInt64
        let virtualAddress: UInt64
        let physicalAddress: UInt64
        let fileSize: UInt64
        let memorySize: UInt64
        let alignment: UInt64
    }

    struct Note: Equatable {
        let name: [UInt8]
        let type: UInt32
        let descriptor: [UInt8]
    }

    static let ptLoad: UInt32 = 1
    static let ptNote: UInt32 = 4
    static let emI386: UInt16 = 3
    static let emX86_64: UInt16 = 62

    let elfClass: Class
    let machine: UInt16
    let entry: UInt64
    let programHeaders: [ProgramHeader]

    /// Whether the file starts with the ELF magic (so a loader can tell ELF from other formats).
    static func hasMagic(_ file: BootFile) -> Bool {
        file.bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46])
    }

    init(_ file: BootFile) throws(BootError) {
        guard Self.hasMagic(file) else { throw file.error("not an ELF file (no \\x7fELF magic at offset 0)") }
        let cls = try file.u8(4, "ELF class (e_ident[EI_CLASS])")
        switch cls {
        case 1: elfClass = .elf32
        case 2: elfClass = .elf64
        default: throw file.error("ELF class \(cls) is neither 1 (ELF32) nor 2 (ELF64)")
        }
        let data = try file.u8(5, "ELF data encoding (e_ident[EI_DATA])")
        guard data == 1 else { throw file.error("ELF data encoding \(data) is not 1 (little endian)") }
        let version = try file.u8(6, "ELF version (e_ident[EI_VERSION])")
        guard version == 1 else { throw file.error("ELF version \(version) is not 1") }
        let type = try file.u16(16, "e_type")
        guard type == 2 else { throw file.error("ELF type \(type) is not 2 (ET_EXEC): only executables can be booted") }
        machine = try file.u16(18, "e_machine")
        guard machine == Self.emI386 || machine == Self.emX86_64 else {
            throw file.error("ELF machine \(machine) is neither 3 (i386) nor 62 (x86-64)")
        }
        let is64 = elfClass == .elf64
        entry = is64 ? try file.u64(24, "e_entry") : UInt64(try file.u32(24, "e_entry"))
        let phoff = is64 ? try file.u64(32, "e_phoff") : UInt64(try file.u32(28, "e_phoff"))
        let phentsize = UInt64(try file.u16(is64 ? 54 : 42, "e_phentsize"))
        let phnum = UInt64(try file.u16(is64 ? 56 : 44, "e_phnum"))
        let expected: UInt64 = is64 ? 56 : 32
        guard phnum > 0 else { throw file.error("the ELF file has no program headers (e_phnum is 0)") }
        guard phnum != 0xFFFF else { throw file.error("e_phnum is PN_XNUM (extended numbering is not supported)") }
        guard phentsize == expected else {
            throw file.error("e_phentsize \(phentsize) is not \(expected), the size of an ELF\(is64 ? 64 : 32) program header")
        }
        _ = try file.slice(phoff, count: phnum * phentsize, "program header table (\(phnum) entries)")
        var headers: [ProgramHeader] = []
        for i in 0..<phnum {
            let at = phoff + i * phentsize
            let what = "program header \(i)"
            if is64 {
                headers.append(ProgramHeader(
                    index: Int(i), type: try file.u32(at, what), offset: try file.u64(at + 8, what),
                    virtualAddress: try file.u64(at + 16, what), physicalAddress: try file.u64(at + 24, what),
                    fileSize: try file.u64(at + 32, what), memorySize: try file.u64(at + 40, what),
                    alignment: try file.u64(at + 48, what)))
            } else {
                headers.append(ProgramHeader(
                    index: Int(i), type: try file.u32(at, what), offset: UInt64(try file.u32(at + 4, what)),
                    virtualAddress: UInt64(try file.u32(at + 8, what)), physicalAddress: UInt64(try file.u32(at + 12, what)),
                    fileSize: UInt64(try file.u32(at + 16, what)), memorySize: UInt64(try file.u32(at + 20, what)),
                    alignment: UInt64(try file.u32(at + 28, what))))
            }
        }
        programHeaders = headers
    }

    /// The PT_LOAD segments as the loader places them: at their physical addresses.
    func loadSegments(_ file: BootFile) throws(BootError) -> [LoadSegment] {
        let loads = programHeaders.filter { $0.type == Self.ptLoad }
        guard !loads.isEmpty else { throw file.error("the ELF file has no PT_LOAD segment: nothing to load") }
        return loads.map {
            LoadSegment(name: "segment \($0.index) (PT_LOAD)", fileOffset: $0.offset, fileSize: $0.fileSize,
                        address: $0.physicalAddress, memorySize: $0.memorySize)
        }
    }

    /// The physical address of virtual address `address`, through the PT_LOAD segment holding it
    /// (multiboot kernels may link the entry at a virtual address), or nil if none holds it.
    func physicalAddress(ofVirtual address: UInt64) -> UInt64? {
        for h in programHeaders where h.type == Self.ptLoad && h.virtualAddress <= address
            && address - h.virtualAddress < h.memorySize {
            return h.physicalAddress &+ (address - h.virtualAddress)
        }
        return nil
    }

    /// Every note in every PT_NOTE segment, in file order.
    func notes(_ file: BootFile) throws(BootError) -> [Note] {
        var notes: [Note] = []
        for h in programHeaders where h.type == Self.ptNote {
            let what = "note segment \(h.index)"
            _ = try file.slice(h.offset, count: h.fileSize, what)
            // Notes are padded to 4 bytes, or to 8 in a segment that says so (GNU property notes).
            let pad: UInt64 = h.alignment == 8 ? 8 : 4
            var at = h.offset
            let end = h.offset + h.fileSize
            while end - at >= 12 {
                let nameSize = UInt64(try file.u32(at, what))
                let descSize = UInt64(try file.u32(at + 4, what))
                let type = try file.u32(at + 8, what)
                let nameStart = at + 12
                let paddedName = (nameSize + pad - 1) & ~(pad - 1)
                guard paddedName <= end - nameStart else {
                    throw file.error("\(what): a note name of \(nameSize) bytes runs past the segment's end")
                }
                let descStart = nameStart + paddedName
                let paddedDesc = (descSize + pad - 1) & ~(pad - 1)
                guard descSize <= end - descStart else {
                    throw file.error("\(what): a note descriptor of \(descSize) bytes runs past the segment's end")
                }
                var name = Array(file.bytes[Int(nameStart)..<Int(nameStart + nameSize)])
                if name.last == 0 { name.removeLast() }
                notes.append(Note(name: name, type: type, descriptor: Array(file.bytes[Int(descStart)..<Int(descStart + descSize)])))
                at = descStart + min(paddedDesc, end - descStart)
            }
        }
        return notes
    }
}
