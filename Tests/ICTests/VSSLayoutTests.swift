import ICProtocol
import Testing

// The VSS body, Linux include/uapi/linux/hyperv.h hv_vss_msg: {u8 operation; u8 reserved[7]; u32 flags}.
@Suite struct VSSLayoutTests {
    @Test func vssLayout() throws {
        let b = VSSMessage(operation: .hotBackup, flags: 5).encode()
        #expect(b == [2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0])
        #expect([VSSOperation.create, .delete, .hotBackup, .getDMInfo, .backupComplete, .freeze, .thaw, .autoRecover].map(\.rawValue) == Array(0...7))
        #expect(try VSSMessage.decode(b[...]) == VSSMessage(operation: .hotBackup, flags: VSSFlags.noAutoRecovery))
        #expect(throws: ICWireError.self) { try VSSMessage.decode(b.prefix(11)) }
    }
}
