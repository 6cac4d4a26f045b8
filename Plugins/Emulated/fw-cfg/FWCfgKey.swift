/// fw_cfg item selectors (QEMU's docs/specs/fw_cfg.rst and its x86 machine): what a guest writes
/// to the selector port, or puts in a DMA access's upper control bits, to pick an item.
enum FWCfgKey {
    static let signature: UInt16 = 0x0000
    static let id: UInt16 = 0x0001
    static let uuid: UInt16 = 0x0002
    static let ramSize: UInt16 = 0x0003
    static let nbCPUs: UInt16 = 0x0005
    static let kernelAddress: UInt16 = 0x0007
    static let kernelSize: UInt16 = 0x0008
    static let kernelCmdline: UInt16 = 0x0009
    static let initrdAddress: UInt16 = 0x000A
    static let initrdSize: UInt16 = 0x000B
    static let maxCPUs: UInt16 = 0x000F
    static let kernelData: UInt16 = 0x0011
    static let initrdData: UInt16 = 0x0012
    static let cmdlineAddress: UInt16 = 0x0013
    static let cmdlineSize: UInt16 = 0x0014
    static let cmdlineData: UInt16 = 0x0015
    static let setupAddress: UInt16 = 0x0016
    static let setupSize: UInt16 = 0x0017
    static let setupData: UInt16 = 0x0018
    static let fileDirectory: UInt16 = 0x0019
    /// Named files take selectors from here up, in directory order.
    static let firstFile: UInt16 = 0x0020
    /// Bit 14 asks for write access (ignored for reads: the item is the same).
    static let writeFlag: UInt16 = 0x4000

    /// "QEMU": what the signature item reads.
    static let signatureBytes = Array("QEMU".utf8)
    /// ID item bits: the port interface, and the DMA interface.
    static let idTraditional: UInt32 = 0x1
    static let idDMA: UInt32 = 0x2
}
