/// A standard PS/2 mouse (device ID 0) on the aux port, reached through controller command D4.
/// There is no host pointer behind it: it answers every command but never moves, so stream-mode
/// reports never occur and Read Data returns a packet without motion.
///
/// A command that takes an argument (E8, F3) is acknowledged and treats the next byte as its
/// argument whatever it is (a sample rate of 200 has bit 7 set); an invalid argument is answered
/// with Resend and the command abandoned. In wrap mode every byte except EC and FF is echoed.
struct PS2Mouse {
    enum Command {
        static let scaling11: UInt8 = 0xE6
        static let scaling21: UInt8 = 0xE7
        static let setResolution: UInt8 = 0xE8
        static let statusRequest: UInt8 = 0xE9
        static let streamMode: UInt8 = 0xEA
        static let readData: UInt8 = 0xEB
        static let resetWrapMode: UInt8 = 0xEC
        static let wrapMode: UInt8 = 0xEE
        static let remoteMode: UInt8 = 0xF0
        static let identify: UInt8 = 0xF2
        static let sampleRate: UInt8 = 0xF3
        static let enable: UInt8 = 0xF4
        static let disable: UInt8 = 0xF5
        static let setDefaults: UInt8 = 0xF6
        static let resend: UInt8 = 0xFE
        static let reset: UInt8 = 0xFF
    }

    static let deviceID: UInt8 = 0x00
    static let defaultSampleRate: UInt8 = 100
    /// 4 counts per millimetre.
    static let defaultResolution: UInt8 = 2
    /// The first byte of a movement packet: bit 3 is always set; no buttons, no motion.
    static let stillPacketHeader: UInt8 = 0x08

    var reporting = false
    var remoteMode = false
    var wrapMode = false
    var scaling21 = false
    var sampleRate = defaultSampleRate
    var resolution = defaultResolution
    /// The command whose argument comes next, or 0.
    var awaitingArgument: UInt8 = 0
    /// What Resend repeats: the last byte the mouse sent (its device ID after power-on).
    var lastSent = deviceID

    init() {}

    /// The rates a PS/2 mouse accepts, in samples per second (a switch: no array on the exit path).
    static func isValidSampleRate(_ rate: UInt8) -> Bool {
        switch rate {
        case 10, 20, 40, 60, 80, 100, 200: true
        default: false
        }
    }

    /// Status Request's first byte: remote mode (bit 6), reporting (5), 2:1 scaling (4); buttons 0.
    var statusByte: UInt8 { (remoteMode ? 0x40 : 0) | (reporting ? 0x20 : 0) | (scaling21 ? 0x10 : 0) }

    mutating func receive(_ byte: UInt8) -> DeviceReply {
        if awaitingArgument != 0 {
            let command = awaitingArgument
            awaitingArgument = 0
            return argument(byte, for: command)
        }
        if wrapMode, byte != Command.resetWrapMode, byte != Command.reset { return DeviceReply(byte) }
        var reply = DeviceReply(PS2Reply.acknowledge)
        switch byte {
        case Command.scaling11: scaling21 = false
        case Command.scaling21: scaling21 = true
        case Command.setResolution, Command.sampleRate: awaitingArgument = byte
        case Command.statusRequest:
            reply.append(statusByte)
            reply.append(resolution)
            reply.append(sampleRate)
        case Command.streamMode: remoteMode = false
        case Command.readData:
            reply.append(Self.stillPacketHeader)
            reply.append(0)
            reply.append(0)
        case Command.resetWrapMode: wrapMode = false
        case Command.wrapMode: wrapMode = true
        case Command.remoteMode: remoteMode = true
        case Command.identify: reply.append(Self.deviceID)
        case Command.enable: reporting = true
        case Command.disable:
            reply.flushesBuffer = true
            reporting = false
        case Command.setDefaults:
            reply.flushesBuffer = true
            reporting = false
            scaling21 = false
            sampleRate = Self.defaultSampleRate
            resolution = Self.defaultResolution
        case Command.resend:
            return DeviceReply(lastSent)
        case Command.reset:
            let kept = lastSent
            self = PS2Mouse()
            lastSent = kept
            reply.flushesBuffer = true
            reply.append(PS2Reply.selfTestPassed)
            reply.append(Self.deviceID)
        default:
            return DeviceReply(PS2Reply.resend)
        }
        return reply
    }

    private mutating func argument(_ value: UInt8, for command: UInt8) -> DeviceReply {
        if command == Command.sampleRate {
            guard Self.isValidSampleRate(value) else { return DeviceReply(PS2Reply.resend) }
            sampleRate = value
        } else {
            guard value <= 3 else { return DeviceReply(PS2Reply.resend) }
            resolution = value
        }
        return DeviceReply(PS2Reply.acknowledge)
    }

    /// Values `load` accepts: what `receive` can produce.
    var isValid: Bool {
        Self.isValidSampleRate(sampleRate) && resolution <= 3
            && [0, Command.setResolution, Command.sampleRate].contains(awaitingArgument)
    }
}
