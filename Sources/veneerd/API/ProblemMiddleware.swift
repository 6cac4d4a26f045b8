import Hummingbird
import NIOCore
import Logging
import VeneerManagement

/// Turns every error a route or Hummingbird throws into `application/problem+json`, so clients
/// see one error shape: the management core's errors by their mapping, Hummingbird's own (no
/// route, body too large, bad upgrade) by their status, and anything unexpected as a logged 500.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return problem.response()
        } catch let error as ManagementError {
            return Problem(error).response()
        } catch let error as HTTPError {
            return Self.problem(for: error, request: request).response()
        } catch is NIOTooManyBytesError {
            return Problem(.tooLarge, status: .contentTooLarge, detail: "the request body is larger than this route accepts", field: "body").response()
        } catch let error as any HTTPResponseError {
            let kind: Problem.Kind = error.status.code >= 500 ? .failed : .invalidRequest
            return Problem(kind, status: error.status, detail: "\(error)").response()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            context.logger.error("request failed unexpectedly", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "error": "\(error)"])
            return Problem(.failed, status: .internalServerError, detail: "internal error while handling \(request.method) \(request.uri.path)").response()
        }
    }

    static func problem(for error: HTTPError, request: Request) -> Problem {
        let detail = error.body ?? error.status.reasonPhrase
        switch error.status {
        case .notFound:
            return Problem(.noRoute, status: .notFound, detail: "no route for \(request.method) \(request.uri.path)")
        case .contentTooLarge:
            return Problem(.tooLarge, status: .contentTooLarge, detail: "the request body is larger than this route accepts", field: "body")
        case .methodNotAllowed:
            return Problem(.methodNotAllowed, status: .methodNotAllowed, detail: "\(request.method) is not allowed on \(request.uri.path)")
        default:
            let kind: Problem.Kind = error.status.code >= 500 ? .failed : .invalidRequest
            return Problem(kind, status: error.status, detail: detail)
        }
    }
}
