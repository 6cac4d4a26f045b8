import ICProtocol

/// The host's side of IC version negotiation: what it offers, and whether a guest's answer is
/// acceptable.
public enum ICNegotiation {
    /// The host's negotiate body: every framework version, then every message version it offers.
    public static func offer(_ profile: ICServiceProfile) -> NegotiateMessage {
        NegotiateMessage(frameworkVersions: profile.frameworkVersions, messageVersions: profile.messageVersions)
    }

    /// The guest's choice from its answer. A guest answers in the request's buffer with counts 1/1
    /// and its framework and message versions in the first two entries; counts 0/0 mean it
    /// supports none of the offered versions. Anything else, or a version the host did not
    /// offer, fails with a one-line reason.
    public static func choice(in body: ArraySlice<UInt8>, offered: NegotiateMessage)
        -> Result<(framework: ICVersion, message: ICVersion), NegotiationError>
    {
        let answer: NegotiateMessage
        do { answer = try NegotiateMessage.decode(body) } catch { return .failure(.malformed(error)) }
        let counts = (answer.frameworkVersions.count, answer.messageVersions.count)
        if counts == (0, 0) { return .failure(.noCommonVersion) }
        guard counts == (1, 1) else { return .failure(.badCounts(framework: counts.0, message: counts.1)) }
        let framework = answer.frameworkVersions[0], message = answer.messageVersions[0]
        guard offered.frameworkVersions.contains(framework) else { return .failure(.notOffered(kind: "framework", framework)) }
        guard offered.messageVersions.contains(message) else { return .failure(.notOffered(kind: "message", message)) }
        return .success((framework, message))
    }

    public enum NegotiationError: Error, Equatable, Sendable, CustomStringConvertible {
        case malformed(ICWireError)
        case noCommonVersion
        case badCounts(framework: Int, message: Int)
        case notOffered(kind: String, ICVersion)

        public var description: String {
            switch self {
            case .malformed(let error): "malformed answer: \(error)"
            case .noCommonVersion: "the guest supports none of the offered versions (it answered counts 0/0)"
            case .badCounts(let f, let m): "the guest answered counts \(f)/\(m), expected 1/1"
            case .notOffered(let kind, let version): "the guest chose \(kind) version \(version), which was not offered"
            }
        }
    }
}
