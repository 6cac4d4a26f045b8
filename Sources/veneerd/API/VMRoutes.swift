import Foundation
import Hummingbird
import VeneerManagement

/// The state-changing operations on one VM: `POST /v1/vms/{name}/{action}`.
enum VMAction: String, CaseIterable, Sendable {
    case start, stop, shutdown, reset, pause, resume
}

/// `POST /v1/vms`'s body: a VMDefinition whose restart policy may leave members out.
struct DefinitionBody: Decodable, Sendable {
    struct Policy: Decodable, Sendable {
        var mode: RestartPolicy.Mode?
        var initialBackoffMs: Int?
        var maxBackoffMs: Int?
    }

    var name: String?
    var config: String
    var directory: String
    var restartPolicy: Policy?

    /// Longest backoff accepted: one day.
    static let maxBackoffMs = 86_400_000
    /// Longest directory path accepted (Linux PATH_MAX).
    static let maxPathBytes = 4096

    /// Checks every member and makes the core's definition; errors name the member.
    func validated() throws -> VMDefinition {
        if let name { try VMName.validate(name) }
        guard !config.isEmpty else { throw Problem.invalid("config", "must not be empty: the VM's TOML configuration") }
        guard !config.utf8.contains(0) else { throw Problem.invalid("config", "must not contain NUL characters") }
        guard directory.hasPrefix("/") else { throw Problem.invalid("directory", "must be an absolute path") }
        guard directory.utf8.count <= Self.maxPathBytes else { throw Problem.invalid("directory", "is longer than \(Self.maxPathBytes) bytes") }
        guard !directory.utf8.contains(0) else { throw Problem.invalid("directory", "must not contain NUL characters") }
        var policy: RestartPolicy?
        if let given = restartPolicy {
            var resolved = RestartPolicy()
            if let mode = given.mode { resolved.mode = mode }
            if let initial = given.initialBackoffMs {
                guard (1...Self.maxBackoffMs).contains(initial) else {
                    throw Problem.invalid("restartPolicy.initialBackoffMs", "must be 1...\(Self.maxBackoffMs) ms")
                }
                resolved.initialBackoffMs = initial
            }
            if let maximum = given.maxBackoffMs {
                guard (1...Self.maxBackoffMs).contains(maximum) else {
                    throw Problem.invalid("restartPolicy.maxBackoffMs", "must be 1...\(Self.maxBackoffMs) ms")
                }
                resolved.maxBackoffMs = maximum
            }
            guard resolved.maxBackoffMs >= resolved.initialBackoffMs else {
                throw Problem.invalid("restartPolicy.maxBackoffMs", "must not be less than initialBackoffMs (\(resolved.initialBackoffMs))")
            }
            policy = resolved
        }
        return VMDefinition(name: name, config: config, directory: directory, restartPolicy: policy)
    }
}

/// `POST /v1/vms/{name}/shutdown`'s optional body.
struct ShutdownBody: Decodable, Sendable {
    var force: Bool?
    var reason: String?

    /// The shutdown integration service carries a reason of at most 512 UTF-16 units.
    static let maxReasonUnits = 512
}

extension VeneerdAPI {
    func define(_ request: Request) async throws -> Response {
        let body = try await RequestBodies.decode(DefinitionBody.self, from: request)
        let details = try await manager.define(try body.validated())
        var response = try RequestBodies.json(details, status: .created)
        response.headers[.location] = "/v1/vms/\(details.summary.name)"
        return response
    }

    func perform(_ action: VMAction, _ request: Request, _ context: APIContext) async throws -> Response {
        let name = try Self.vmName(context)
        let details: VMDetails
        switch action {
        case .start: details = try await manager.start(name)
        case .stop: details = try await manager.stop(name)
        case .reset: details = try await manager.reset(name)
        case .pause: details = try await manager.pause(name)
        case .resume: details = try await manager.resume(name)
        case .shutdown:
            let body = try await RequestBodies.decodeIfPresent(ShutdownBody.self, from: request)
            if let reason = body?.reason {
                guard reason.utf16.count <= ShutdownBody.maxReasonUnits else {
                    throw Problem.invalid("reason", "is longer than \(ShutdownBody.maxReasonUnits) UTF-16 units")
                }
                guard !reason.utf8.contains(0) else { throw Problem.invalid("reason", "must not contain NUL characters") }
            }
            details = try await manager.shutdown(name, force: body?.force ?? false, reason: body?.reason)
        }
        return try RequestBodies.json(details)
    }
}
