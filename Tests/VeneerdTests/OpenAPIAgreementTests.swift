import Foundation
import Testing
import NIOHTTP1
import Yams
@testable import VeneerdAPI

/// docs/api/openapi.yaml and the served routes agree: every documented operation is routed
/// (and answered by its route, not the no-route fallback) and every route is documented.
@Suite struct OpenAPIAgreementTests {
    static let documentPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/api/openapi.yaml").path

    static let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options"]

    static func documentedOperations() throws -> Set<VeneerdAPI.Route> {
        let text = try String(contentsOfFile: documentPath, encoding: .utf8)
        guard let document = try Yams.load(yaml: text) as? [String: Any], let paths = document["paths"] as? [String: Any] else {
            throw TestFailure("\(documentPath) has no paths")
        }
        var operations: Set<VeneerdAPI.Route> = []
        for (path, item) in paths {
            guard let item = item as? [String: Any] else { continue }
            for key in item.keys where methods.contains(key) {
                operations.insert(VeneerdAPI.Route(method: key.uppercased(), path: path))
            }
        }
        return operations
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedOperationIsRouted() async throws {
        let documented = try Self.documentedOperations()
        try await APIHarness.with { api in
            let served = Set(api.api.routes)
            #expect(api.api.routes.count == served.count, "a route is registered twice")
            #expect(served.subtracting(documented).isEmpty, "routed but not documented: \(served.subtracting(documented).sorted { $0.description < $1.description })")
            #expect(documented.subtracting(served).isEmpty, "documented but not routed: \(documented.subtracting(served).sorted { $0.description < $1.description })")

            // And each documented operation reaches its route over the socket.
            for operation in documented where operation.path != "/v1/events" {
                let path = operation.path.replacingOccurrences(of: "{name}", with: "nosuchvm")
                    .replacingOccurrences(of: "{device}", with: "dev").replacingOccurrences(of: "{key}", with: "key")
                let reply = try await api.request(.init(rawValue: operation.method), path)
                let type = (try? reply.json())?["type"] as? String
                #expect(type != "urn:veneer:problem:no-route", "\(operation) is documented but not routed: \(reply.text)")
            }
        }
    }
}
