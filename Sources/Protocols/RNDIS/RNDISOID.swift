/// NDIS object identifiers a netvsc guest (Linux or Windows) queries or sets.
public enum RNDISOID {
    public static let supportedList: UInt32 = 0x0001_0101
    public static let hardwareStatus: UInt32 = 0x0001_0102
    public static let mediaSupported: UInt32 = 0x0001_0103
    public static let mediaInUse: UInt32 = 0x0001_0104
    public static let maximumLookahead: UInt32 = 0x0001_0105
    public static let maximumFrameSize: UInt32 = 0x0001_0106
    public static let linkSpeed: UInt32 = 0x0001_0107
    public static let transmitBlockSize: UInt32 = 0x0001_010A
    public static let receiveBlockSize: UInt32 = 0x0001_010B
    public static let vendorID: UInt32 = 0x0001_010C
    public static let vendorDescription: UInt32 = 0x0001_010D
    public static let currentPacketFilter: UInt32 = 0x0001_010E
    public static let currentLookahead: UInt32 = 0x0001_010F
    public static let maximumTotalSize: UInt32 = 0x0001_0111
    public static let macOptions: UInt32 = 0x0001_0113
    public static let mediaConnectStatus: UInt32 = 0x0001_0114
    public static let maximumSendPackets: UInt32 = 0x0001_0115
    public static let vendorDriverVersion: UInt32 = 0x0001_0116
    public static let physicalMedium: UInt32 = 0x0001_0202
    public static let receiveScaleCapabilities: UInt32 = 0x0001_0203
    public static let receiveScaleParameters: UInt32 = 0x0001_0204
    public static let rndisConfigParameter: UInt32 = 0x0001_021B
    public static let transmitOK: UInt32 = 0x0002_0101
    public static let receiveOK: UInt32 = 0x0002_0102
    public static let transmitError: UInt32 = 0x0002_0103
    public static let receiveError: UInt32 = 0x0002_0104
    public static let receiveNoBuffer: UInt32 = 0x0002_0105
    public static let friendlyName: UInt32 = 0x0002_0216
    public static let permanentAddress: UInt32 = 0x0101_0101
    public static let currentAddress: UInt32 = 0x0101_0102
    public static let multicastList: UInt32 = 0x0101_0103
    public static let maximumMulticastListSize: UInt32 = 0x0101_0104
    public static let offloadCurrentConfig: UInt32 = 0xFC01_020B
    public static let offloadParameters: UInt32 = 0xFC01_020C
    public static let offloadHardwareCapabilities: UInt32 = 0xFC01_020D
}

/// GEN_CURRENT_PACKET_FILTER bits.
public enum PacketFilter {
    public static let directed: UInt32 = 0x01
    public static let multicast: UInt32 = 0x02
    public static let allMulticast: UInt32 = 0x04
    public static let broadcast: UInt32 = 0x08
    public static let promiscuous: UInt32 = 0x20
}
