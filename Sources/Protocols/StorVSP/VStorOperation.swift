/// The `operation` field of every storvsp packet, in both directions.
public enum VStorOperation: UInt32, Sendable, CaseIterable {
    /// Every host reply carries this operation.
    case completeIO = 1
    /// Host → guest (transaction id 0): a LUN went away; Linux rescans as for ENUMERATE_BUS.
    case removeDevice = 2
    case executeSRB = 3
    case resetLUN = 4
    case resetAdapter = 5
    case resetBus = 6
    case beginInitialization = 7
    case endInitialization = 8
    case queryProtocolVersion = 9
    case queryProperties = 10
    /// Host → guest (transaction id 0): LUNs were added or removed; the guest rescans the bus.
    case enumerateBus = 11
    case fibreChannelHBAData = 12
    case createSubChannels = 13
    case eventNotification = 14
}
