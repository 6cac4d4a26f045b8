/// The MF2 keyboard on the first PS/2 port, as far as the system can see it: its command set and
/// settings. Key presses come from the host input (already in the keyboard's scan code set).
///
/// A command that takes an argument (ED, F0, F3) is acknowledged and waits for it. Arguments
/// have bit 7 clear; a byte with bit 7 set in their place is a new command, which is how a
/// keyboard recovers when the system abandons a command. An argument out of range is answered
/// with Resend and the command abandoned.
struct PS2Keyboard {
    enum Command {
        static let setLEDs: UInt8 = 0xED
        static let echo: UInt8 = 0xEE
        static let scancodeSet: UInt8 = 0xF0
        static let identify: UInt8 = 0xF2
        static let typematic: UInt8 = 0xF3
        static let enable: UInt8 = 0xF4
        static let defaultDisable: UInt8 = 0xF5
        static let setDefault: UInt8 = 0xF6
        static let resend: UInt8 = 0xFE
        static let reset: UInt8 = 0xFF
    }

    /// An MF2 keyboard's identification, sent after the acknowledgement of F2.
    static let identity: (UInt8, UInt8) = (0xAB, 0x83)
    /// 10.9 characters/s after a 500 ms delay.
    static let defaultTypematic: UInt8 = 0x2B
    static let defaultScancodeSet: UInt8 = 2

    var scanning = true
    var scancodeSet = defaultScancodeSet
    var typematic = defaultTypematic
    /// Scroll, Num and Caps Lock (bits 0-2).
    var leds: UInt8 = 0
    /// The command whose argument comes next, or 0.
    var awaitingArgument: UInt8 = 0
    /// What Resend repeats: the last byte the keyboard sent (its BAT result after power-on).
    var lastSent = PS2Reply.selfTestPassed

    init() {}

    mutating func receive(_ byte: UInt8) -> DeviceReply {
        if awaitingArgument != 0, byte & 0x80 == 0 {
            let command = awaitingArgument
            awaitingArgument = 0
            return argument(byte, for: command)
        }
        awaitingArgument = 0
        var reply = DeviceReply()
        switch byte {
        case Command.setLEDs, Command.scancodeSet, Command.typematic:
            awaitingArgument = byte
            reply.append(PS2Reply.acknowledge)
        case Command.echo:
            reply.append(Command.echo)
        case Command.identify:
            reply.append(PS2Reply.acknowledge)
            reply.append(Self.identity.0)
            reply.append(Self.identity.1)
        case Command.enable:
            reply.flushesBuffer = true
            scanning = true
            reply.append(PS2Reply.acknowledge)
        case Command.defaultDisable, Command.setDefault:
            // Power-on defaults except the LEDs, which only a reset turns off.
            reply.flushesBuffer = true
            scancodeSet = Self.defaultScancodeSet
            typematic = Self.defaultTypematic
            scanning = byte == Command.setDefault
            reply.append(PS2Reply.acknowledge)
        case Command.resend:
            reply.append(lastSent)
        case Command.reset:
            let kept = lastSent
            self = PS2Keyboard()
            lastSent = kept
            reply.flushesBuffer = true
            reply.append(PS2Reply.acknowledge)
            reply.append(PS2Reply.selfTestPassed)
        default:
            reply.append(PS2Reply.resend)
        }
        return reply
    }

    private mutating func argument(_ value: UInt8, for command: UInt8) -> DeviceReply {
        switch command {
        case Command.setLEDs:
            leds = value & 0x07
        case Command.typematic:
            typematic = value
        default: // Command.scancodeSet
            switch value {
            case 0:
                var reply = DeviceReply(PS2Reply.acknowledge)
                reply.append(scancodeSet)
                return reply
            case 1...3:
                scancodeSet = value
            default:
                return DeviceReply(PS2Reply.resend)
            }
        }
        return DeviceReply(PS2Reply.acknowledge)
    }

    /// Values `load` accepts: what `receive` can produce.
    var isValid: Bool {
        (1...3).contains(scancodeSet) && leds & ~0x07 == 0 && typematic & 0x80 == 0
            && [0, Command.setLEDs, Command.scancodeSet, Command.typematic].contains(awaitingArgument)
    }
}
