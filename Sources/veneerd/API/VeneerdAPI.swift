import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import Prometheus
import VeneerManagement

/// veneerd's HTTP API: every route over one `VMManaging`. Build the router with `makeRouter()`;
/// `APIServer` serves it on the UNIX socket.
public struct VeneerdAPI: Sendable {
    public static let version = "1"

    let manager: any VMManaging
    /// Absolute; uploads go under `<stateDirectory>/vms/<name>/uploads/`.
    let stateDirectory: String
    /// veneerd's own metrics (request counters through swift-metrics), rendered after the VMs'.
    let daemonMetrics: PrometheusCollectorRegistry
    let logger: Logger

    public init(manager: any VMManaging, stateDirectory: String, daemonMetrics: PrometheusCollectorRegistry, logger: Logger) {
        self.manager = manager
        self.stateDirectory = stateDirectory
        self.daemonMetrics = daemonMetrics
        self.logger = logger
    }

    /// One route as the OpenAPI document names it: method and templated path (`{name}`).
    public struct Route: Hashable, Sendable, CustomStringConvertible {
        public var method: String
        public var path: String
        public var description: String { "\(method) \(path)" }
    }

    /// Every route veneerd serves, in registration order.
    public var routes: [Route] { makeRouterAndRoutes().routes }

    public func makeRouter() -> Router<APIContext> { makeRouterAndRoutes().router }

    typealias Handler = @Sendable (Request, APIContext) async throws -> Response

    private func makeRouterAndRoutes() -> (router: Router<APIContext>, routes: [Route]) {
        let router = Router(context: APIContext.self)
        // Metrics outside, so request counters see the status the problem mapping chose.
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: ProblemMiddleware())
        var routes: [Route] = []
        func add(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping Handler) {
            routes.append(Route(method: method.rawValue, path: path))
            router.on(RouterPath(Self.routerPath(path)), method: method, use: handler)
        }

        add(.get, "/v1") { _, _ in try self.serviceInfo() }
        add(.get, "/v1/vms") { _, _ in try RequestBodies.json(await self.manager.list()) }
        add(.post, "/v1/vms") { request, _ in try await self.define(request) }
        add(.get, "/v1/vms/{name}") { _, context in try RequestBodies.json(try await self.manager.info(try Self.vmName(context))) }
        add(.delete, "/v1/vms/{name}") { _, context in
            try await self.manager.delete(try Self.vmName(context))
            return Response(status: .noContent)
        }
        for action in VMAction.allCases {
            add(.post, "/v1/vms/{name}/\(action.rawValue)") { request, context in try await self.perform(action, request, context) }
        }
        add(.post, "/v1/vms/{name}/devices/{device}/requests") { request, context in try await self.deviceRequest(request, context) }
        add(.get, "/v1/vms/{name}/kvp") { request, context in try await self.kvpList(request, context) }
        add(.get, "/v1/vms/{name}/kvp/{key}") { request, context in try await self.kvpGet(request, context) }
        add(.put, "/v1/vms/{name}/kvp/{key}") { request, context in try await self.kvpSet(request, context) }
        add(.delete, "/v1/vms/{name}/kvp/{key}") { request, context in try await self.kvpDelete(request, context) }
        add(.post, "/v1/vms/{name}/files") { request, context in try await self.upload(request, context) }
        add(.get, "/v1/events") { _, _ in await self.eventStream() }
        add(.get, "/v1/metrics") { _, _ in await self.metricsResponse() }

        routes.append(Route(method: HTTPRequest.Method.get.rawValue, path: "/v1/vms/{name}/console"))
        router.ws(RouterPath(Self.routerPath("/v1/vms/{name}/console")), shouldUpgrade: { request, context in
            try await self.consoleShouldUpgrade(request, context)
        }, onUpgrade: { inbound, outbound, context in
            try await self.bridgeConsole(inbound: inbound, outbound: outbound, context: context)
        })
        return (router, routes)
    }

    /// "/v1/vms/{name}" (OpenAPI) → "/v1/vms/:name" (Hummingbird).
    static func routerPath(_ openAPIPath: String) -> String {
        openAPIPath.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? ":" + segment.dropFirst().dropLast() : String(segment)
        }.joined(separator: "/")
    }

    struct ServiceInfo: Codable, Sendable {
        var version: String
        var pid: Int32
        var stateDirectory: String
    }

    private func serviceInfo() throws(Problem) -> Response {
        try RequestBodies.json(ServiceInfo(version: Self.version, pid: getpid(), stateDirectory: stateDirectory))
    }

    // MARK: Path parameters

    /// A path parameter, percent-decoded (Hummingbird hands it over raw).
    static func pathParameter(_ context: APIContext, _ name: String) throws(Problem) -> String {
        guard let raw = context.parameters.get(name) else {
            throw Problem.invalid(name, "is missing from the path")
        }
        guard let decoded = raw.removingPercentEncoding else {
            throw Problem.invalid(name, "is not valid percent-encoded UTF-8")
        }
        return decoded
    }

    /// The `{name}` parameter, validated as a VM name before anything uses it.
    static func vmName(_ context: APIContext) throws -> String {
        let name = try pathParameter(context, "name")
        try VMName.validate(name)
        return name
    }
}
